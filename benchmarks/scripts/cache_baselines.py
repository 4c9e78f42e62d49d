"""Train and cache the baseline posteriors of (task, budget) pairs of a benchmark folder whose
cache lacks them, with the benchmark's seeded training run (`benchmark.cache.trained`), so that
`python -m sbi_cmpe.benchmark.timing` can time them. Prints each run's epochs, to compare with
the `epochs` column of `results.csv` (the same count means the same run).

Usage: python benchmarks/scripts/cache_baselines.py <out> <task> <budget> [<budget> ...]
(e.g. `python benchmarks/scripts/cache_baselines.py benchmarks/results slcp 1000 10000`)
"""

import sys
import warnings
from pathlib import Path

import torch

from sbi_cmpe.benchmark.cache import trained
from sbi_cmpe.benchmark.tasks import load_task

warnings.simplefilter("ignore")
torch.set_num_threads(1)  # as the benchmark run
out, name, budgets = Path(sys.argv[1]), sys.argv[2], [int(b) for b in sys.argv[3:]]
task = load_task(name)
for budget in budgets:
    for method in ("npe_maf", "npe_nsf", "fmpe"):
        result = trained(task, budget, method, 0, out / "cache")
        print(name, budget, method, "epochs", result.epochs, "train s", round(result.train_time_s))
