"""Which validation score can choose a posterior's sampling steps? (issue 17, item 2)

Run from the repository root: `python benchmarks/scripts/step_scores.py FOLDER SEED`.

For each cached CMPE posterior of SEED in FOLDER/cache, the trainer's validation split is
made again (the benchmark trains after `torch.manual_seed(seed)`, and sbi's first random draw
of `train` is the permutation of the split), and each candidate score is computed at 1, 2, 3,
5 and 10 steps on it, with 32 draws per simulation (at least 16,384 draws in all): the energy
score, and Gaussian kernel scores with bandwidth 0.5, 1 and 2 times the median distance between
3-step draws per x. Each score's choice under the rule of `sbi_cmpe.steps` (3 unless another
number of steps beats it by two standard errors) and under the plain argmin are printed and
written to FOLDER/step_scores.csv.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import torch

from sbi_cmpe.benchmark.cache import cached_posteriors, simulations_path
from sbi_cmpe.steps import best_steps

GRID = (1, 2, 3, 5, 10)


def per_simulation_scores(estimator, theta, x, m):
    """Dict score name -> (G, n) per-simulation scores."""
    std = estimator.theta_std
    truth = (theta.reshape(len(theta), -1) / std)[:, None]  # (n, 1, D)
    draws = {}
    for k in GRID:
        generator = torch.Generator().manual_seed(0)
        y = estimator.sample((m,), x, num_steps=k, generator=generator)
        draws[k] = (y.reshape(m, len(theta), -1) / std).transpose(0, 1)  # (n, m, D)
    base = draws[3]
    median = torch.cdist(base, base).flatten(1).median(1).values.clamp(min=1e-12)  # (n,)
    out = {"energy": [], "kernel_0.5": [], "kernel_1": [], "kernel_2": []}
    for k in GRID:
        y = draws[k]
        pair = torch.cdist(y, y)  # (n, m, m)
        out["energy"].append(
            (y - truth).norm(dim=-1).mean(1) - pair.sum((1, 2)) / (2 * m * (m - 1))
        )
        for scale in (0.5, 1, 2):
            two_h2 = 2 * (scale * median)[:, None] ** 2
            to_truth = torch.exp(-((y - truth) ** 2).sum(-1) / two_h2).mean(1)
            spread = (torch.exp(-(pair**2) / two_h2[:, :, None]).sum((1, 2)) - m) / (m * (m - 1))
            out[f"kernel_{scale}"].append(0.5 * spread - to_truth)
    return {name: torch.stack(v) for name, v in out.items()}


def main(folder: str, seed: int) -> None:
    torch.set_num_threads(1)
    folder = Path(folder)
    rows = []
    for cached in cached_posteriors(folder / "cache"):
        if cached.seed != seed or cached.method != "cmpe":
            continue
        sims = torch.load(simulations_path(folder / "cache", cached.task, cached.budget, seed))
        theta, x = sims["theta"], sims["x"]
        torch.manual_seed(seed)
        perm = torch.randperm(len(theta))
        val = perm[int(0.9 * len(theta)) :][:512]
        estimator = torch.load(cached.path, weights_only=False).posterior.estimator
        m = max(32, math.ceil(16_384 / len(val)))
        with torch.no_grad():
            scores = per_simulation_scores(estimator, theta[val], x[val], m)
        row = dict(task=cached.task, budget=cached.budget, seed=seed, held_out=len(val))
        for name, s in scores.items():
            rule, se = best_steps(GRID, s)
            row[f"{name}_rule"] = rule
            row[f"{name}_argmin"] = GRID[int(s.mean(1).argmin())]
            gain = (s.mean(1)[2] - s.mean(1)) / se.clamp(min=1e-12)
            row[f"{name}_gain_in_se"] = " ".join(f"{g:.1f}" for g in gain.tolist())
        rows.append(row)
        print(row, flush=True)
    with open(folder / "step_scores.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
