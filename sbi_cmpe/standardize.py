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

__all__ = ["linear_z_score", "MAX_REGRESSORS", "RIDGE"]

# Regressors (entries of x) beyond which the regression is skipped: its cost grows as X³.
MAX_REGRESSORS = 2048
# Ridge penalty on the z-scored regressors, relative to the number of simulations.
RIDGE = 1e-3
# Residual scales are floored at this fraction of theta's standard deviation.
MIN_SCALE = 1e-3


def linear_z_score(theta: Tensor, x: Tensor) -> Optional[Tuple[Tensor, Tensor, Tensor, Tensor]]:
    r"""Fit the centre $\mu(x) = \bar\theta + (x - \bar x) A$ and residual scale $\sigma$.

    Arguments:
        theta: Parameters `(N, D)` (or `(N, *input_shape)`, flattened).
        x: Simulations `(N, *x_shape)`, flattened to `(N, X)`.

    Returns:
        `(theta_mean (D,), theta_std (D,), slope (X, D), x_center (X,))` in float32, or
        `None` when the regression is not fitted: more than `MAX_REGRESSORS` entries of x,
        fewer than `2 (X + 1)` simulations, or a non-finite fit.
    """
    num = len(theta)
    t = theta.reshape(num, -1).double()  # (N, D)
    z = x.reshape(num, -1).double()  # (N, X)
    width = z.shape[1]
    if width > MAX_REGRESSORS or num < 2 * (width + 1):
        return None
    t_mean, z_mean = t.mean(0), z.mean(0)  # (D,), (X,)
    z_std = z.std(0).clamp(min=1e-12)  # (X,)
    z = (z - z_mean) / z_std  # (N, X), z-scored regressors
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
