"""Share of each parameter's variance that the linear z-score's regression on x explains
(R^2 = 1 - residual variance / variance), for the simulation files given, e.g. a tuning run's
cache: does it tell the tasks where the option helped from those where it did not?

    python benchmarks/tuning/linear_z_score/r2.py OUT/cache/sims_*.pt
"""

import sys
from pathlib import Path

import torch

from sbi_cmpe.standardize import linear_z_score


def main() -> None:
    for path in sys.argv[1:]:
        sims = torch.load(path)
        theta, x = sims["theta"], sims["x"]
        _, scale, _, _ = linear_z_score(theta, x)
        r2 = 1 - scale**2 / theta.reshape(len(theta), -1).var(0)
        print(
            f"{Path(path).stem:34s} x {tuple(x.shape[1:])}: R^2 mean {r2.mean():.3f}, "
            f"min {r2.min():.3f}, max {r2.max():.3f}"
        )


if __name__ == "__main__":
    main()
