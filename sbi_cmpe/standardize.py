r"""Standardization of $\theta$ around a centre linear in $x$.

sbi z-scores $\theta$ by its mean and standard deviation over the simulations. When the
posterior is much narrower than the prior in some dimensions, the network must then resolve
scales that differ by orders of magnitude. A least-squares regression of $\theta$ on the
flattened $x$ removes the part of $\theta$ that $x$ predicts linearly:

$$\tilde\theta = (\theta - \mu(x)) / \sigma, \qquad \mu(x) = \bar\theta + (x - \bar x) A,$$

with $A$ the ridge solution on z-scored $x$ and $\sigma$ the standard deviation of the
residuals per dimension. The map is affine in $\theta$ for each $x$, so densities change by
the constant $-\sum_d \ln \sigma_d$; the network models what the regression leaves.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

__all__ = ["linear_z_score", "MAX_REGRESSORS", "RIDGE", "SIMULATIONS_PER_REGRESSOR"]

# Regressors (entries of x) beyond which the regression is skipped: its cost grows as X³.
MAX_REGRESSORS = 2048
# Ridge penalty on the z-scored regressors, relative to the number of simulations.
RIDGE = 1e-3
# Residual scales are floored at this fraction of theta's standard deviation.
MIN_SCALE = 1e-3
# Simulations needed per regressor (and intercept), so that the fit does not chase noise.
SIMULATIONS_PER_REGRESSOR = 10
# Entries of x whose spread is below this fraction of their magnitude (float rounding of a
# constant) get no weight.
CONSTANT = 1e-6


def linear_z_score(theta: Tensor, x: Tensor) -> Optional[Tuple[Tensor, Tensor, Tensor, Tensor]]:
    r"""Fit the centre $\mu(x) = \bar\theta + (x - \bar x) A$ and residual scale $\sigma$.

    Arguments:
        theta: Parameters `(N, D)` (or `(N, *input_shape)`, flattened).
        x: Simulations `(N, *x_shape)`, flattened to `(N, X)`.

    Returns:
        `(theta_mean (D,), theta_std (D,), slope (X, D), x_center (X,))` in float32, or
        `None` when the regression is not fitted: more than `MAX_REGRESSORS` entries of x,
        fewer than `SIMULATIONS_PER_REGRESSOR (X + 1)` simulations, or a non-finite fit.
        Entries of x that are constant up to rounding get a zero slope.
    """
    num = len(theta)
    t = theta.reshape(num, -1).double()  # (N, D)
    z = x.reshape(num, -1).double()  # (N, X)
    width = z.shape[1]
    if width > MAX_REGRESSORS or num < SIMULATIONS_PER_REGRESSOR * (width + 1):
        return None
    t_mean, z_mean, z_std = t.mean(0), z.mean(0), z.std(0)  # (D,), (X,), (X,)
    varying = z_std > CONSTANT * z_mean.abs() + 1e-30  # (X,)
    z_std = torch.where(varying, z_std, torch.ones_like(z_std))
    z = (z - z_mean) / z_std * varying  # (N, X), z-scored regressors, constants zeroed
    gram = z.T @ z / num + RIDGE * torch.eye(width, dtype=z.dtype, device=z.device)  # (X, X)
    coef = torch.linalg.solve(gram, z.T @ (t - t_mean) / num)  # (X, D)
    residual = t - t_mean - z @ coef  # (N, D)
    floor = MIN_SCALE * t.std(0).clamp(min=1e-12)  # (D,)
    scale = torch.maximum(residual.std(0), floor)  # (D,)
    slope = coef / z_std[:, None]  # (X, D), on the raw x
    fitted = (t_mean, scale, slope, z_mean)
    if not all(torch.isfinite(v).all() for v in fitted):
        return None
    return tuple(v.float() for v in fitted)  # type: ignore[return-value]
