r"""Continuous-time consistency training as a lever for training time (issue 17), measured
with the benchmark without changing the package.

In the limit of a fine grid, the gradient of the iCT loss
$\lambda(t)\, d(f_\phi(\theta_{t+\Delta}, t + \Delta), \mathrm{sg}[f_\phi(\theta_t, t)])$ becomes
$w(t)\, \langle \nabla_\phi f_\phi(\theta_t, t, x), \mathrm{sg}[\hat g] \rangle$ with the tangent
$g = \mathrm{d} f_\phi(\theta + t z, t, x) / \mathrm{d}t = J_\theta f\, z + \partial_t f$
(continuous-time consistency training, Song et al., 2023; sCM, Lu and Song, 2024). This
script trains with the surrogate loss
$w(t)\, \langle f_\phi(\theta_t, t, x), \mathrm{sg}[g / (\|g\| + c)] \rangle$, whose gradient is
that limit: the tangent is one forward-mode pass (`torch.func.jvp`) without a graph, $\ln t$
is drawn from the schedule's lognormal (clipped to $[\epsilon, T]$), and the tangent is
normalized as sCM does. The warm start (the first half of a two-parameter run, teacher at
$\epsilon$) is kept as it is, so the continuous phase tunes a denoiser, as easy consistency
tuning does.

Everything else is the benchmark: this script patches `ConsistencyEstimator.loss` outside
the warm start and then runs `python -m sbi_cmpe.benchmark` with the remaining arguments.

    CT_WEIGHT=inv_t CT_C=0.1 python benchmarks/scripts/continuous_time.py --tasks two_moons ...

Environment variables: `CT_WEIGHT` is `inv_t` ($w = 1 / t$, the limit of iCT's
$\lambda = 1 / \Delta$ on a Karras grid up to a power) or `one` ($w = 1$); `CT_C` is $c$.
"""

import math
import os
import sys

import torch
from torch import Tensor

from sbi_cmpe.benchmark.__main__ import main
from sbi_cmpe.estimator import ConsistencyEstimator

WEIGHT = os.environ.get("CT_WEIGHT", "inv_t")
C = float(os.environ.get("CT_C", "0.1"))
discrete_loss = ConsistencyEstimator.loss


def continuous_loss(self, input, condition, num_points=None, generator=None, warm_start=False):
    if warm_start or self.density:
        return discrete_loss(self, input, condition, num_points, generator, warm_start)
    self._check_input_shape(input)
    theta = self.standardize(input.reshape(input.shape[0], -1), condition)  # (B, D)
    embedded_x = self._embed(condition)  # (B, C)
    s = self.schedule
    log_t = s.p_mean + s.p_std * torch.randn(theta.shape[0], device=theta.device)
    t = log_t.exp().clamp(min=s.eps * (1 + 1e-3), max=s.T)  # (B,)
    z = torch.randn_like(theta)  # (B, D)
    theta_t = theta + t[:, None] * z  # (B, D)

    def f(th: Tensor, tt: Tensor) -> Tensor:
        return self.consistency_function(th, tt, embedded_x.detach())

    with torch.no_grad():
        _, g = torch.func.jvp(f, (theta_t, t), (z, torch.ones_like(t)))  # (B, D)
        g = g / (g.norm(dim=-1, keepdim=True) + C)
        w = 1.0 / t if WEIGHT == "inv_t" else torch.ones_like(t)  # (B,)
    student = self.consistency_function(theta_t, t, embedded_x)  # (B, D)
    return w * (student * g).sum(dim=-1)


assert math.isfinite(C) and WEIGHT in ("inv_t", "one")
ConsistencyEstimator.loss = continuous_loss

if __name__ == "__main__":
    main(sys.argv[1:])
