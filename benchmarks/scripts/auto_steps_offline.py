"""The step rule of `sbi_cmpe.steps` applied again to trained CMPE posteriors (issue 17, item 2).

Run from the repository root:

    python benchmarks/scripts/auto_steps_offline.py benchmarks/tuning/auto_steps 1

For each cached CMPE posterior of the seed in `<folder>/cache`, the rule is applied to fresh
held-out simulations (prior draws after `torch.manual_seed(1000 + seed)`, as many as the
validation split of its budget, at most 512), since the trainer's split is not kept with the
posterior. Where it chooses other than 3 steps, the C2ST at the chosen steps is computed at
observations 1-5 as the benchmark does (same draws seed, 10,000 draws, sbi's `c2st`). The
fixed-3 C2ST comes from `<folder>/results.csv`. Rows go to `<folder>/offline_rule.csv`.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import torch

from sbi_cmpe.benchmark.cache import cached_posteriors
from sbi_cmpe.benchmark.run import _sampling_seed, benchmark_c2st
from sbi_cmpe.benchmark.tasks import load_task
from sbi_cmpe.steps import choose_num_steps

OBSERVATIONS = (1, 2, 3, 4, 5)


def main(folder: str, seed: int) -> None:
    torch.set_num_threads(1)
    folder = Path(folder)
    rows = list(csv.DictReader(open(folder / "results.csv")))
    out = []
    for cached in cached_posteriors(folder / "cache"):
        if cached.seed != seed or cached.method != "cmpe":
            continue
        task = load_task(cached.task)
        posterior = torch.load(cached.path, weights_only=False).posterior
        torch.manual_seed(1000 + seed)
        n = min(512, max(1, cached.budget // 10))
        theta = task.prior.sample((n,))
        choice = choose_num_steps(posterior.estimator, theta, task.simulator(theta))
        fixed = [
            float(r["c2st"])
            for r in rows
            if (r["task"], int(r["budget"]), r["num_steps"]) == (cached.task, cached.budget, "3")
        ]
        if choice.num_steps == 3:
            chosen = fixed
        else:
            chosen = []
            for obs in OBSERVATIONS:
                torch.manual_seed(_sampling_seed(seed, obs, choice.num_steps))
                draws = posterior.sample(
                    (10_000,),
                    x=task.observation(obs),
                    num_steps=choice.num_steps,
                    show_progress_bars=False,
                )
                chosen.append(benchmark_c2st(draws, task.reference_samples(obs, 10_000)))
        out.append(
            dict(
                task=cached.task,
                budget=cached.budget,
                seed=seed,
                held_out=n,
                chosen_steps=choice.num_steps,
                scores=" ".join(f"{s:.5f}" for s in choice.scores),
                standard_errors=" ".join(f"{e:.5f}" for e in choice.standard_errors),
                c2st_chosen=round(sum(chosen) / len(chosen), 4),
                c2st_3_steps=round(sum(fixed) / len(fixed), 4),
                choice_seconds=round(choice.seconds, 2),
            )
        )
        print(out[-1], flush=True)
    with open(folder / "offline_rule.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(out[0]))
        writer.writeheader()
        writer.writerows(out)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
