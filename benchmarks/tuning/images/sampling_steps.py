"""RMSE and coverage of tuned CMPE networks on the image tuning split at 1, 2, 3, 5 and 10
sampling steps (`tune.py`'s split and seed, its cached networks in `OUT`).

    python benchmarks/tuning/images/sampling_steps.py OUT METHOD [METHOD ...]
"""

import sys
import warnings
from pathlib import Path

import torch
from tune import SEED, tuning_task

from sbi_cmpe.benchmark.cache import trained
from sbi_cmpe.benchmark.images import image_metrics


def main() -> None:
    out, methods = Path(sys.argv[1]), sys.argv[2:]
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    task, tuning = tuning_task()
    xs = torch.cat([task.observation(i) for i in range(1, len(tuning) + 1)])  # (100, 8, 8)
    for method in methods:
        posterior = trained(task, 10_000, method, SEED, out / "cache").posterior
        for steps in (1, 2, 3, 5, 10):
            torch.manual_seed(SEED)
            draws = posterior.sample_batched(
                (1_000,), x=xs, num_steps=steps, show_progress_bars=False
            )
            metrics = image_metrics(draws, tuning)
            print(
                f"{method} steps={steps}: rmse {metrics['rmse']:.4f} coverage_50 "
                f"{metrics['coverage_50']:.3f} coverage_90 {metrics['coverage_90']:.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
