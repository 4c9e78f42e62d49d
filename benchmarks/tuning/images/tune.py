"""Tuning split of the image suite: CMPE's budget at 10,000 simulations, away from the test digits.

The reported image suite (`python -m sbi_cmpe.benchmark --suite images`) holds out 100 test
digits and uses the other 1,697 as the prior. Here those 1,697 training digits are split
again by a seeded permutation (seed 1): 100 tuning digits, held out, and 1,597 as the prior.
The reported test digits are neither simulated nor scored. Simulations and training use
tuning seed 1; x of tuning digit i has its noise seeded by 1,000 + i. Each method trains (or
loads) on the same simulations, then RMSE and coverage come from 1,000 draws per tuning
digit (`sbi_cmpe.benchmark.images.image_metrics`). One torch thread.

    python benchmarks/tuning/images/tune.py OUT BUDGET METHOD [METHOD ...]

prints one CSV row per method (header first); METHOD `exact` is the exact posterior under the
tuning prior (`sbi_cmpe.benchmark.images.exact_posterior_draws`, no training).
"""

import csv
import sys
import warnings
from pathlib import Path

import torch

from sbi_cmpe.benchmark.cache import trained
from sbi_cmpe.benchmark.images import (
    DigitsPrior,
    blur_and_noise,
    cnn_embedding,
    exact_posterior_draws,
    image_metrics,
    split_digits,
)
from sbi_cmpe.benchmark.tasks import Task, seeded

SEED = 1
NUM_TUNING = 100


def tuning_task() -> tuple[Task, torch.Tensor]:
    """The tuning task (prior: 1,597 training digits) and its 100 tuning digits `(100, 64)`."""
    train, _ = split_digits(100)  # the reported test digits are dropped here
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(SEED))
    prior, tuning = train[order[NUM_TUNING:]], train[order[:NUM_TUNING]]

    def observation(i: int) -> torch.Tensor:  # (1, 8, 8)
        return seeded(1_000 + i, lambda: blur_and_noise(tuning[i - 1 : i]))

    task = Task(
        f"digits_tuning{NUM_TUNING}", DigitsPrior(prior), blur_and_noise, observation, None,
        num_observations=NUM_TUNING, embedding=cnn_embedding,
    )  # fmt: skip
    return task, tuning


def scores(draws: torch.Tensor, truth: torch.Tensor) -> list[str]:
    """RMSE and 50% / 90% coverage of draws `(1000, 100, 64)` against the digits, as CSV cells."""
    metrics = image_metrics(draws, truth)
    return [
        f"{metrics['rmse']:.4f}",
        f"{metrics['coverage_50']:.3f}",
        f"{metrics['coverage_90']:.3f}",
    ]


def main() -> None:
    out, budget, methods = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    task, tuning = tuning_task()
    xs = torch.cat([task.observation(i) for i in range(1, NUM_TUNING + 1)])  # (100, 8, 8)
    writer = csv.writer(sys.stdout)
    writer.writerow(
        ["budget", "method", "seed", "rmse", "coverage_50", "coverage_90", "train_time_s",
         "optimizer_steps", "num_steps"]
    )  # fmt: skip
    for method in methods:
        torch.manual_seed(SEED)
        if method == "exact":  # the exact posterior under the tuning prior, no training
            draws = exact_posterior_draws(xs, task.prior.images, 1_000)
            writer.writerow([budget, method, SEED, *scores(draws, tuning), "", "", ""])
            continue
        result = trained(task, budget, method, SEED, out / "cache")
        torch.manual_seed(SEED)
        draws = result.posterior.sample_batched((1_000,), x=xs, show_progress_bars=False)
        steps = result.posterior.num_steps if method.startswith("cmpe") else ""
        writer.writerow(
            [budget, method, SEED, *scores(draws, tuning), f"{result.train_time_s:.1f}",
             result.optimizer_steps, steps]
        )  # fmt: skip
        sys.stdout.flush()


if __name__ == "__main__":
    main()
