"""Correlation of theta's residuals after the linear z-score's regression on x, per sbibm task:
the largest absolute off-diagonal correlation of theta under the prior and of the residuals,
and the extreme eigenvalues of the residuals' correlation matrix (1 and 1 when uncorrelated).
10,000 prior simulations per task, torch seed 1.

    cd benchmarks/tuning/linear_z_score && python residuals.py > residuals.txt
"""

import sbibm
import torch

from sbi_cmpe.standardize import linear_z_score


def largest_off_diagonal(corr: torch.Tensor) -> float:
    return (corr - torch.diag(torch.diag(corr))).abs().max().item()


torch.manual_seed(1)
print("task | prior max |corr| | residual max |corr| | residual corr. eigenvalues (min, max)")
for name in ["two_moons", "gaussian_mixture", "slcp", "gaussian_linear", "bernoulli_glm"]:
    task = sbibm.get_task(name)
    theta = task.get_prior()(num_samples=10_000)
    x = task.get_simulator()(theta)
    mean, std, slope, x_center = linear_z_score(theta, x)
    residual = theta - mean - (x - x_center) @ slope  # (N, D)
    corr = torch.corrcoef(residual.T)
    eig = torch.linalg.eigvalsh(corr)
    print(
        f"{name} | {largest_off_diagonal(torch.corrcoef(theta.T)):.3f} | "
        f"{largest_off_diagonal(corr):.3f} | {eig.min().item():.3f}, {eig.max().item():.3f}"
    )
