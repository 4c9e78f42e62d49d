"""Does a narrower kernel make the step rule see what C2ST sees? (issue 17, item 2)

For each cached CMPE network of the tuning folders given, the kernel scores of 1, 2, 3, 5 and 10
sampling steps on 512 fresh held-out simulations (prior draws after
`torch.manual_seed(1000 + seed)`, 16 draws each) at several bandwidths, beside the network's
C2ST at 3 and 10 steps (mean over the observations of its `results.csv`). One row per network
and bandwidth, as CSV on standard output.

    python benchmarks/tuning/step_bandwidth/probe.py FOLDER [FOLDER ...]
"""

import csv
import sys
from collections import defaultdict
from pathlib import Path

import torch

from sbi_cmpe.benchmark.cache import cached_posteriors, method_label
from sbi_cmpe.benchmark.tasks import load_task
from sbi_cmpe.steps import STEP_GRID, best_steps, kernel_scores

BANDWIDTHS = (0.5, 0.25, 0.125, 0.0625)
HELD_OUT = 512
DRAWS = 16


def main(folders: list) -> None:
    torch.set_num_threads(1)
    out = csv.writer(sys.stdout)
    out.writerow(
        [
            "task",
            "budget",
            "method",
            "seed",
            "bandwidth",
            "chosen",
            "z_10_vs_3",
            "z_best",
            "c2st_3",
            "c2st_10",
            "scores",
        ]
    )
    for folder in map(Path, folders):
        c2st = defaultdict(list)
        for r in csv.DictReader(open(folder / "results.csv")):
            key = (r["task"], int(r["budget"]), method_label(r["method"]), int(r["seed"]))
            c2st[key, r["num_steps"]].append(float(r["c2st"]))
        for cached in cached_posteriors(folder / "cache"):
            if not cached.method.startswith("cmpe"):
                continue
            key = (cached.task, cached.budget, cached.method, cached.seed)
            if (key, "10") not in c2st:
                continue
            task = load_task(cached.task)
            estimator = torch.load(cached.path, weights_only=False).posterior.estimator
            torch.manual_seed(1000 + cached.seed)
            theta = task.prior.sample((HELD_OUT,))
            x = task.simulator(theta)
            for h in BANDWIDTHS:
                scores = kernel_scores(estimator, theta, x, STEP_GRID, DRAWS, bandwidth=h)
                chosen, se = best_steps(STEP_GRID, scores)
                mean = scores.mean(1)
                three, ten = STEP_GRID.index(3), STEP_GRID.index(10)
                best = int(mean.argmin())
                z10 = float(mean[three] - mean[ten]) / max(float(se[ten]), 1e-12)
                zb = float(mean[three] - mean[best]) / max(float(se[best]), 1e-12)
                c3 = sum(c2st[key, "3"]) / len(c2st[key, "3"])
                c10 = sum(c2st[key, "10"]) / len(c2st[key, "10"])
                out.writerow(
                    [
                        *key,
                        h,
                        chosen,
                        round(z10, 2),
                        round(zb, 2) if best != three else 0.0,
                        round(c3, 4),
                        round(c10, 4),
                        " ".join(f"{s:.5f}" for s in mean.tolist()),
                    ]
                )
                sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
