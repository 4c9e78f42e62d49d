r"""Continuous-time consistency training as a lever for training time (issue 17), measured
with the benchmark without changing the package.

As the grid of iCT gets finer, the difference of the student
$f_\phi(\theta_{t+\Delta}, t + \Delta, x)$ and its teacher $\mathrm{sg}[f_\phi(\theta_t, t, x)]$
tends to $\Delta\, g$ with the tangent
$g = \mathrm{d} f_\phi(\theta + t z, t, x) / \mathrm{d}t = J_\theta f\, z + \partial_t f$,
and the loss's gradient to a weighted $\langle \nabla_\phi f_\phi(\theta_t, t, x), g \rangle$
(continuous-time consistency training, Song et al., 2023). This script trains with a
continuous-time analogue in the style of sCM (Lu and Song, 2024), the surrogate
$w(t)\, \langle f_\phi(\theta_t, t, x), \mathrm{sg}[g / (\|g\| + c)] \rangle$: the tangent is
one forward-mode pass (`torch.func.jvp`) without a graph, normalized as sCM does, and $\ln t$
is drawn from the schedule's lognormal, clipped to $[\epsilon, T]$. The surrogate's value is
no loss (it can be negative), so the logged training loss means nothing for these runs;
validation and stopping use the energy score as usual. `generator` (a fixed-noise loss) is
ignored. The warm start (the first half of a two-parameter run, teacher at $\epsilon$) and
networks with a density head keep the package's loss, so the continuous phase tunes the warm
start's denoiser, as easy consistency tuning does.

Everything else is the benchmark: this script patches `ConsistencyEstimator.loss` and then
runs `python -m sbi_cmpe.benchmark` with its arguments.

    CT_WEIGHT=inv_t CT_C=0.1 python benchmarks/scripts/continuous_time.py --tasks two_moons ...

Environment variables: `CT_WEIGHT` is `inv_t` ($w = 1 / t$; iCT's $\lambda = 1 / \Delta$ on a
Karras grid with $\rho = 7$ grows like $t^{-6/7}$) or `one` ($w = 1$); `CT_C` is $c > 0$.
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
        return self.consistency_function(th, tt, embedded_x)

    with torch.no_grad():
        _, g = torch.func.jvp(f, (theta_t, t), (z, torch.ones_like(t)))  # (B, D)
        g = g / (g.norm(dim=-1, keepdim=True) + C)
        w = 1.0 / t if WEIGHT == "inv_t" else torch.ones_like(t)  # (B,)
    student = self.consistency_function(theta_t, t, embedded_x)  # (B, D)
    return w * (student * g).sum(dim=-1)


if __name__ == "__main__":
    if not (math.isfinite(C) and C > 0) or WEIGHT not in ("inv_t", "one"):
        raise ValueError(f"Need CT_C > 0 and CT_WEIGHT in (inv_t, one), got {C}, {WEIGHT}.")
    ConsistencyEstimator.loss = continuous_loss
    main(sys.argv[1:])
