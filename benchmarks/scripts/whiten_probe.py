r"""Whitening the residuals of the linear z-score, measured with the benchmark without
changing the package.

`consistency_nn(z_score_theta="linear")` standardizes $\theta$ as
$(\theta - \mu(x)) / \sigma$, each dimension by its residual standard deviation. Where the
residuals are correlated (`benchmarks/tuning/linear_z_score/residuals.txt`) the network still
sees a narrow, tilted cloud. This script whitens them instead:
$\tilde\theta = L^{-1} (\theta - \mu(x))$ with $L$ the Cholesky factor of the residuals'
covariance $\Sigma = L L^\top$, so the standardized parameters have identity covariance.
The map stays affine in $\theta$ for each $x$.

It patches `sbi_cmpe.factory._theta_standardization` (for `"linear"`) and the estimator's
`standardize` / `unstandardize`, then runs `python -m sbi_cmpe.benchmark` with its
arguments:

    WHITEN=1 python benchmarks/scripts/whiten_probe.py --tasks bernoulli_glm \
        --methods cmpe:z_score_theta=linear ...

With `WHITEN` unset or 0 nothing is patched (the package's linear z-score). `theta_std` keeps
the residuals' standard deviations, which the step rule and the validation score use as
per-dimension scales; `log_prob` is not patched (its constant would need $\ln |\det L|$).
"""

import os
import sys

import torch
from torch import Tensor

import sbi_cmpe.factory as factory
from sbi_cmpe.benchmark.__main__ import main
from sbi_cmpe.estimator import ConsistencyEstimator

_plain_standardization = factory._theta_standardization
_pending: list = []  # the Cholesky factor of the last fit, taken by the next estimator


def _whitened_standardization(option, theta: Tensor, x: Tensor) -> tuple:
    mean, std, slope, x_center = _plain_standardization(option, theta, x)
    if slope is None:
        _pending.append(None)
        return mean, std, slope, x_center
    flat_theta = theta.reshape(len(theta), -1).double()  # (N, D)
    flat_x = x.reshape(len(x), -1).double()  # (N, X)
    residual = flat_theta - mean.double() - (flat_x - x_center.double()) @ slope.double()
    cov = torch.cov(residual.T).reshape(flat_theta.shape[1], -1)  # (D, D)
    chol = torch.linalg.cholesky(cov + 1e-9 * torch.eye(len(cov), dtype=cov.dtype))
    _pending.append(chol.float())
    return mean, std, slope, x_center


_plain_init = ConsistencyEstimator.__init__


def _init(self, *args, **kwargs) -> None:
    _plain_init(self, *args, **kwargs)
    chol = _pending.pop() if _pending else None
    self.register_buffer("theta_chol", chol)


def _standardize(self, theta: Tensor, condition: Tensor) -> Tensor:
    chol = self._buffers.get("theta_chol")
    if chol is None:
        return (theta - self.theta_center(condition)) / self.theta_std
    residual = theta - self.theta_center(condition)  # (..., B, D)
    solved = torch.linalg.solve_triangular(chol, residual.unsqueeze(-1), upper=False)
    return solved.squeeze(-1)  # (..., B, D), L^{-1} (theta - mu(x))


def _unstandardize(self, theta: Tensor, condition: Tensor) -> Tensor:
    chol = self._buffers.get("theta_chol")
    if chol is None:
        return theta * self.theta_std + self.theta_center(condition)
    return theta @ chol.T + self.theta_center(condition)  # (..., B, D)


if os.environ.get("WHITEN", "0") == "1":
    factory._theta_standardization = _whitened_standardization
    ConsistencyEstimator.__init__ = _init
    ConsistencyEstimator.standardize = _standardize
    ConsistencyEstimator.unstandardize = _unstandardize

if __name__ == "__main__":
    main(sys.argv[1:])
