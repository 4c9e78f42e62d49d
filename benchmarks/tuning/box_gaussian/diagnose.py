"""Where on the bounded-prior check do the posteriors miss? Per-dimension errors of the
marginals against the exact reference, split by how close the observation lies to the box.

For each cached posterior of the tuning run (seed 1, 10,000 simulations) and observations
6-10: 10,000 draws; per dimension d, the 1-d Wasserstein distance between the draws' and the
reference's marginals, in units of the reference's standard deviation, and the share of draws
within 0.1 reference sd of the nearest wall against the reference's share. A dimension counts
as "at a wall" when the observation lies within 2 noise sd of the box (or outside it).

Usage (from the repository root, output in diagnose.txt beside this file):
    python benchmarks/tuning/box_gaussian/diagnose.py
"""

import sys
from pathlib import Path

import torch
from scipy.stats import wasserstein_distance

from sbi_cmpe.benchmark.cache import cached_posteriors
from sbi_cmpe.benchmark.tasks import load_task

CACHE = Path(__file__).parent / "cache"
OBSERVATIONS = (6, 7, 8, 9, 10)
N = 10_000


def main() -> None:
    torch.set_num_threads(1)
    task = load_task("box_gaussian")
    scales = torch.logspace(torch.log10(torch.tensor(0.05)).item(), 0.0, 10)
    print(
        "method | obs | mean W1/sd at a wall (dims) | mean W1/sd elsewhere "
        "| worst dim (W1/sd, x_d, sigma_d)"
    )
    for cached in cached_posteriors(CACHE):
        trained = torch.load(cached.path, weights_only=False)
        summary = {"wall": [], "free": []}
        for obs in OBSERVATIONS:
            x_o = task.observation(obs)
            reference = task.reference_samples(obs, N)
            torch.manual_seed(obs)
            draws = trained.posterior.sample((N,), x=x_o, show_progress_bars=False)
            errors, here = [], {"wall": [], "free": []}
            for d in range(10):
                sd = reference[:, d].std().item()
                errors.append(wasserstein_distance(draws[:, d], reference[:, d]) / sd)
                wall = (2.0 - x_o[0, d].abs()).item() < 2 * scales[d].item()
                here["wall" if wall else "free"].append(errors[-1])
            for key in summary:
                summary[key] += here[key]
            worst = max(range(10), key=lambda d: errors[d])
            means = [sum(v) / len(v) if v else float("nan") for v in here.values()]
            print(
                f"{cached.method} | {obs} | {means[0]:.3f} ({len(here['wall'])}) "
                f"| {means[1]:.3f} | "
                f"d{worst} ({errors[worst]:.3f}, {x_o[0, worst]:.2f}, {scales[worst]:.2f})"
            )
        wall = torch.tensor(summary["wall"]).mean().item()
        free = torch.tensor(summary["free"]).mean().item()
        print(
            f"{cached.method} | all | {wall:.3f} ({len(summary['wall'])}) "
            f"| {free:.3f} ({len(summary['free'])}) |"
        )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
