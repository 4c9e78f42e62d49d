"""Power of the step rule (`sbi_cmpe.steps`) against held-out simulations and bandwidth.

For each cached CMPE posterior given as `TASK:SEED:PATH`, the rule's kernel scores are
computed on `n` fresh held-out simulations (prior draws after `torch.manual_seed(2000 +
seed)`) for each `n` of `--held-out` and each kernel bandwidth of `--bandwidths` (a fraction of
the median distance between draws), with 16 draws per simulation or 16,384 in all, whichever
is more, at most 128 per simulation (the rule's own draws), and the rule's choice is made from
them. `z` is each number of steps' gain over 3 steps in standard errors of the paired
difference (positive: better than 3). Then the judge: sbi's C2ST of 10,000 draws at each
number of steps of `--steps` and at every chosen one, at the tuning observations
(`--observations`, sampling seeds as the benchmark's). One row per posterior, `n` and
bandwidth, printed as CSV (`--no-judge`: without the C2ST).

    python benchmarks/scripts/step_rule_power.py TASK:SEED:PATH [...] \
        --held-out 512 2048 8192 --bandwidths 0.5 --steps 3 5 10 --observations 6 7 8
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import torch

from sbi_cmpe.benchmark.run import _sampling_seed, benchmark_c2st
from sbi_cmpe.benchmark.tasks import load_task
from sbi_cmpe.estimator import UNCHOSEN_STEPS
from sbi_cmpe.steps import (
    MAX_DRAWS_PER_SIMULATION,
    STEP_CHOICE_DRAWS,
    STEP_GRID,
    best_steps,
    kernel_scores,
)


def _judge(c2st: dict, posterior, task, seed: int, k: int, observations) -> float:
    """Mean C2ST of `k` steps over the observations, memoized in `c2st`."""
    if k not in c2st:
        values = []
        for obs in observations:
            torch.manual_seed(_sampling_seed(seed, obs, k))
            draws = posterior.sample(
                (10_000,), x=task.observation(obs), num_steps=k, show_progress_bars=False
            )
            values.append(benchmark_c2st(draws, task.reference_samples(obs, 10_000)))
        c2st[k] = sum(values) / len(values)
    return c2st[k]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("posteriors", nargs="+")
    parser.add_argument("--held-out", type=int, nargs="+", default=[512, 2048, 8192])
    parser.add_argument("--bandwidths", type=float, nargs="+", default=[0.5])
    parser.add_argument("--steps", type=int, nargs="+", default=[3, 5, 10])
    parser.add_argument("--observations", type=int, nargs="+", default=[6, 7, 8])
    parser.add_argument("--no-judge", action="store_true", help="skip the C2ST columns")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    grid = STEP_GRID
    header = f"task,seed,path,held_out,bandwidth,chosen,z ({' '.join(map(str, grid))}),choice_s"
    if not args.no_judge:
        header += "," + ",".join(f"c2st_{k}" for k in args.steps) + ",c2st_chosen"
    print(header, flush=True)
    for spec in args.posteriors:
        name, seed, path = spec.split(":", 2)
        seed = int(seed)
        task = load_task(name)
        posterior = torch.load(path, weights_only=False).posterior
        c2st: dict = {}
        for n in args.held_out:
            torch.manual_seed(2000 + seed)
            theta = task.prior.sample((n,))
            x = task.simulator(theta)
            m = min(MAX_DRAWS_PER_SIMULATION, max(16, math.ceil(STEP_CHOICE_DRAWS / n)))
            for bandwidth in args.bandwidths:
                start = time.perf_counter()
                scores = kernel_scores(posterior.estimator, theta, x, grid, m, bandwidth=bandwidth)
                seconds = time.perf_counter() - start
                chosen, se = best_steps(grid, scores)
                gain = scores[grid.index(UNCHOSEN_STEPS)].mean() - scores.mean(1)  # (G,)
                z = " ".join(f"{float(g / e) if e > 0 else 0.0:.2f}" for g, e in zip(gain, se))
                row = f"{name},{seed},{path},{n},{bandwidth},{chosen},{z},{seconds:.1f}"
                if not args.no_judge:
                    row += "," + ",".join(
                        f"{_judge(c2st, posterior, task, seed, k, args.observations):.4f}"
                        for k in (*args.steps, chosen)
                    )
                print(row, flush=True)


if __name__ == "__main__":
    main()
