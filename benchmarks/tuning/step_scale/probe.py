"""Does weighing each dimension by its posterior spread fix the step rule's choice? (issue 17)

For each cached CMPE network of the folders given, the step rule (`choose_num_steps`) on three
fresh held-out sets as large as the run's validation split (a tenth of the budget, at most
`VALIDATION_SIMULATIONS`; prior draws after `torch.manual_seed(2000 + 10 * seed + r)`,
r = 0, 1, 2), with the kernel score in the training's standardization and with each dimension
divided by its spread among the draws (`per_dimension`), beside the network's mean C2ST at each
number of steps that its folder's `results.csv` has (empty where it has none), and the
best-scoring number of steps with its z (mean score of 3 steps minus its, over the standard
error of the paired difference; the rule switches above 2). One row per network, held-out set
and variant, as CSV on standard output.

    python benchmarks/tuning/step_scale/probe.py FOLDER [FOLDER ...]
"""

import csv
import sys
from collections import defaultdict
from pathlib import Path

import torch

from sbi_cmpe.benchmark.cache import cached_posteriors
from sbi_cmpe.benchmark.store import iter_rows
from sbi_cmpe.benchmark.tasks import load_task
from sbi_cmpe.steps import STEP_GRID, choose_num_steps
from sbi_cmpe.validation import VALIDATION_SIMULATIONS

REPEATS = 3


def _mean_c2st(folder: Path) -> dict:
    """Mean C2ST of the CMPE step sweep in `folder/results.csv`, keyed by (task, budget, seed,
    steps)."""
    runs = defaultdict(list)
    for r in iter_rows(folder / "results.csv"):
        if r["method"] == "cmpe" and r["num_steps"].isdigit():
            where = (r["task"], int(r["budget"]), int(r["seed"]), int(r["num_steps"]))
            runs[where].append(float(r["c2st"]))
    return {where: round(sum(v) / len(v), 4) for where, v in runs.items()}


def main(folders: list) -> None:
    torch.set_num_threads(1)
    out = csv.writer(sys.stdout)
    head = ["task", "budget", "method", "seed", "held_out", "per_dimension", "chosen"]
    out.writerow(
        head
        + ["c2st_chosen", "c2st_best", "best_steps"]
        + [f"c2st_{k}" for k in STEP_GRID]
        + ["best_scored", "z_best_vs_3"]
    )
    for folder in map(Path, folders):
        c2st = _mean_c2st(folder)
        for cached in cached_posteriors(folder / "cache"):
            if cached.method != "cmpe":
                continue
            key = (cached.task, cached.budget, cached.method, cached.seed)
            where = (cached.task, cached.budget, cached.seed)
            mean = {k: c2st[where + (k,)] for k in STEP_GRID if where + (k,) in c2st}
            best = min(mean, key=mean.get) if mean else ""
            task = load_task(cached.task)
            estimator = torch.load(cached.path, weights_only=False).posterior.estimator
            for r in range(REPEATS):
                torch.manual_seed(2000 + 10 * cached.seed + r)
                theta = task.prior.sample((min(VALIDATION_SIMULATIONS, cached.budget // 10),))
                x = task.simulator(theta)
                for per_dimension in (False, True):
                    choice = choose_num_steps(estimator, theta, x, per_dimension=per_dimension)
                    k, scores = choice.num_steps, choice.scores
                    top = min(range(len(scores)), key=scores.__getitem__)
                    home = choice.grid.index(3)
                    se = max(choice.standard_errors[top], 1e-12)
                    z = 0.0 if top == home else (scores[home] - scores[top]) / se
                    row = [*key, r, per_dimension, k, mean.get(k, ""), mean.get(best, ""), best]
                    row += [mean.get(j, "") for j in STEP_GRID]
                    out.writerow(row + [choice.grid[top], round(z, 2)])
                    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
