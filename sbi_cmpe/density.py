r"""The density of a consistency estimator, from its denoiser head by the probability flow.

The denoiser $D(\theta_t, t, x) \approx E[\theta \mid \theta_t, x]$ of the variance-exploding
path $\theta_t = \theta + t z$ defines the probability-flow ODE, which in $s = \ln t$ reads
$\mathrm{d}\theta_t / \mathrm{d}s = \theta_t - D(\theta_t, t, x)$
(`probability_flow`). It carries $p_\epsilon(\cdot \mid x)$, the
posterior up to noise of scale $\epsilon$, to $p_T(\cdot \mid x)$, the posterior blurred by
$\mathcal{N}(0, T^2 I)$, so by the change of variables

$$ \log q(\theta \mid x) = \log p_T(\theta_T) + \int_{\ln \epsilon}^{\ln T}
   \nabla \cdot v(\theta_s, s)\, \mathrm{d}s - \sum_i \log \sigma_i, $$

with $\theta_s$ the solution started at the standardized $\theta$, and $\sigma_i$ the
z-scoring of $\theta$. At $T$ the blur dominates, so $p_T \approx \mathcal{N}(m(x),
\mathrm{diag}(v(x)) + T^2 I)$ on the standardized scale, with the posterior's mean and
variances read off the denoiser where it is nearly linear (Tweedie): with
$J = \partial D / \partial \theta_T$ at $0$, $m_i = D_i(0, T, x) / (1 - J_{ii})$ and
$v_i = T^2 J_{ii} / (1 - J_{ii})$. `ode_sample` draws from this same model. zuko's
`FreeFormJacobianTransform` solves the ODE (adaptive Dormand-Prince, adjoint gradients)
with the exact divergence up to `EXACT_MAX_DIM` dimensions and Hutchinson's unbiased
estimate (one probe per solve, so a noisy one) above.

References:
    | Score-Based Generative Modeling through Stochastic Differential Equations
    | Song, Sohl-Dickstein, Kingma, Kumar, Ermon and Poole, ICLR 2021
    | https://arxiv.org/abs/2011.13456

    | Consistency Trajectory Models (a denoising loss beside the consistency loss)
    | Kim, Lai, Liao, Murata, Takida, Uesaka, He, Mitsufuji and Ermon, ICLR 2024
    | https://arxiv.org/abs/2310.02279
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Optional

import torch
from torch import Tensor
from zuko.distributions import DiagNormal, NormalizingFlow
from zuko.transforms import FreeFormJacobianTransform

from sbi_cmpe.sampling_net import shared_condition_net

if TYPE_CHECKING:
    from sbi_cmpe.estimator import ConsistencyEstimator

__all__ = [
    "EXACT_MAX_DIM",
    "LOG_PROB_TOLERANCE",
    "denoiser_scalings",
    "denoising_loss",
    "probability_flow",
    "ode_log_prob",
    "ode_sample",
]

# Parameter dimensions up to which the divergence is computed exactly (one backward pass
# per dimension); above, Hutchinson's estimate with one Gaussian probe per solve.
EXACT_MAX_DIM = 10
# Absolute and relative tolerance of the solver in `ode_log_prob`.
LOG_PROB_TOLERANCE = 1e-4


def denoiser_scalings(t: Tensor, sigma_data: float = 1.0) -> tuple[Tensor, Tensor]:
    r"""Skip and output scalings of the denoiser $D = c_\mathrm{skip} \theta_t +
    c_\mathrm{out} G$ (EDM, Karras et al., 2022): $c_\mathrm{skip} = \sigma^2 / (t^2 +
    \sigma^2)$, $c_\mathrm{out} = \sigma t / \sqrt{\sigma^2 + t^2}$ (no $\epsilon$ shift).

    Arguments:
        t: Noise levels, any shape.
        sigma_data: Standard deviation $\sigma$ of the (standardized) parameters.

    Returns:
        `(c_skip, c_out)`, each of the shape of `t`.
    """
    s2 = sigma_data**2
    return s2 / (t**2 + s2), sigma_data * t / torch.sqrt(s2 + t**2)


def denoising_loss(denoised: Tensor, theta: Tensor, t: Tensor, sigma_data: float = 1.0) -> Tensor:
    r"""Denoising score matching on the variance-exploding path, EDM-weighted:
    $\lambda(t) \tfrac1D \|D(\theta + t z, t, x) - \theta\|^2$ with
    $\lambda(t) = (t^2 + \sigma^2) / (\sigma t)^2$, which gives every noise level unit
    weight at the optimum's scale. The minimizer is $D = E[\theta \mid \theta_t, x]$, whose
    probability-flow ODE (`probability_flow`) gives the density.

    Arguments:
        denoised: $D(\theta + t z, t, x)$ of shape `(B, D)`.
        theta: The clean standardized parameters of shape `(B, D)`.
        t: Noise levels of shape `(B,)`.
        sigma_data: Standard deviation $\sigma$ of the standardized parameters.

    Returns:
        Loss per element of the batch, shape `(B,)`.
    """
    weight = (t**2 + sigma_data**2) / (sigma_data * t) ** 2  # (B,)
    return weight * ((denoised - theta) ** 2).mean(dim=-1)


def probability_flow(theta_t: Tensor, denoised: Tensor) -> Tensor:
    r"""Velocity of the probability-flow ODE in $s = \ln t$:
    $\mathrm{d}\theta_t / \mathrm{d}s = t\, \mathrm{d}\theta_t / \mathrm{d}t
    = \theta_t - D(\theta_t, t, x)$.

    Integrated from $\ln \epsilon$ to $\ln T$ with the change of variables
    $\log p_\epsilon(\theta) = \log p_T(\theta_T) + \int \nabla \cdot v \, \mathrm{d}s$,
    it gives the density of the model at $\theta$ (Song et al., 2021; the ODE in $\ln t$
    is smooth where the one in $t$ is stiff, near $\epsilon$).

    Arguments:
        theta_t: Points of shape `(B, D)`.
        denoised: $D(\theta_t, t, x)$ of shape `(B, D)`.

    Returns:
        The velocity, shape `(B, D)`.
    """
    return theta_t - denoised


def ode_log_prob(
    estimator: ConsistencyEstimator,
    input: Tensor,
    condition: Tensor,
    exact: Optional[bool] = None,
    atol: float = LOG_PROB_TOLERANCE,
    rtol: float = LOG_PROB_TOLERANCE,
) -> Tensor:
    r"""$\log q(\theta \mid x)$ of a consistency estimator with a denoiser head.

    The solver's absolute and relative tolerances default to `LOG_PROB_TOLERANCE`; tighter
    ones cost more network calls (`benchmarks/density/README.md`).

    Arguments:
        estimator: A `ConsistencyEstimator` with `density=True`.
        input: Parameters of shape `(S, B, *input_shape)`.
        condition: Conditions of shape `(B, *condition_shape)`.
        exact: Exact divergence (`True`) or Hutchinson's estimate (`False`); `None` for
            exact up to `EXACT_MAX_DIM` parameter dimensions.
        atol: Absolute tolerance of the ODE solver.
        rtol: Relative tolerance of the ODE solver.

    Returns:
        Log densities of shape `(S, B)`.
    """
    shape = estimator.input_shape
    if input.dim() != 2 + len(shape) or input.shape[2:] != shape:
        raise ValueError(
            f"theta must have shape (S, B, {', '.join(map(str, shape))}), got "
            f"{tuple(input.shape)}."
        )
    num, batch, dim = input.shape[0], input.shape[1], shape.numel()
    if condition.shape[0] != batch:
        raise ValueError(f"{batch} batches of theta but {condition.shape[0]} conditions.")
    if num * batch == 0:
        return input.new_zeros(num, batch)
    theta = estimator.standardize(input.reshape(num, batch, dim), condition)  # (S, B, D)
    theta = theta.reshape(-1, dim)  # rows s * B + b
    flow = _flow(estimator, condition, num, exact, atol, rtol)
    log_prob = flow.log_prob(theta)  # (S * B,)
    return (log_prob - estimator.theta_std.log().sum()).reshape(num, batch)


@torch.no_grad()
def ode_sample(
    estimator: ConsistencyEstimator,
    num: int,
    condition: Tensor,
    atol: float = 1e-5,
    rtol: float = 1e-5,
) -> Tensor:
    r"""Draws of the density that `ode_log_prob` evaluates: base draws at $T$ carried to
    $\epsilon$ by the probability-flow ODE (one solve for all draws, slower than the
    consistency sampler but the model of `log_prob`, up to the solvers' tolerances).

    Arguments:
        estimator: A `ConsistencyEstimator` with `density=True`.
        num: Draws per condition.
        condition: Conditions of shape `(B, *condition_shape)`.
        atol: Absolute tolerance of the ODE solver.
        rtol: Relative tolerance of the ODE solver.

    Returns:
        Draws of shape `(num, B, *input_shape)`.
    """
    flow = _flow(estimator, condition, num, True, atol, rtol)
    theta = flow.sample()  # (num * B, D), row s * B + b for x_b
    theta = estimator.unstandardize(theta.reshape(num, len(condition), -1), condition)
    return theta.reshape(num, condition.shape[0], *estimator.input_shape)


def _flow(
    estimator: ConsistencyEstimator,
    condition: Tensor,
    num: int,
    exact: Optional[bool],
    atol: float,
    rtol: float,
) -> NormalizingFlow:
    """The probability-flow model for `num` rows per condition, rows draw-major."""
    dim, schedule = estimator.input_shape.numel(), estimator.schedule
    embedded = estimator._embed(condition)  # (B, C)
    rows = embedded.repeat(num, 1)  # (num * B, C), row s * B + b holds x_b
    mean, var = _blurred_moments(estimator, embedded.detach(), dim)  # (B, D), (B, D)

    # Without gradients, all rows of a call share t and the rows of one x share x, so the
    # network's condition and time terms are computed once per call (`sampling_net`); with
    # gradients (`map`, HMC, NUTS) the full network keeps x's rows among the ODE's parameters.
    shared = None if torch.is_grad_enabled() else shared_condition_net(estimator.net, embedded)

    def velocity(s: Tensor, theta_s: Tensor) -> Tensor:
        t = s.exp().expand(theta_s.shape[0])  # (num * B,)
        if shared is None:
            return probability_flow(theta_s, estimator.denoiser(theta_s, t, rows))
        out = shared(theta_s, float(s))  # (num * B, 2 D)
        return probability_flow(theta_s, estimator._denoiser_head(theta_s, t, out))

    transform = FreeFormJacobianTransform(
        f=velocity,
        t0=math.log(schedule.eps),
        t1=math.log(schedule.T),
        phi=(rows,),  # gradients for theta (and x), not for the network's weights
        atol=atol,
        rtol=rtol,
        exact=dim <= EXACT_MAX_DIM if exact is None else exact,
    )
    std = (var + schedule.T**2).sqrt()
    return NormalizingFlow(transform, DiagNormal(mean.repeat(num, 1), std.repeat(num, 1)))


def _blurred_moments(
    estimator: ConsistencyEstimator, embedded: Tensor, dim: int
) -> tuple[Tensor, Tensor]:
    r"""Posterior mean `(B, D)` and variances `(B, D)` on the standardized scale from the
    denoiser at the largest noise level $T$, where it is nearly linear in $\theta_T$:
    $D(\theta_T) \approx m + J (\theta_T - m)$ with $J = v / (v + T^2)$ (Tweedie), so
    $m = D(0) / (1 - J)$ and $v = T^2 J / (1 - J)$, per dimension."""
    batch, t_max = embedded.shape[0], estimator.schedule.T
    t = embedded.new_full((batch,), t_max)
    with torch.enable_grad():
        point = embedded.new_zeros(batch, dim, requires_grad=True)
        denoised = estimator.denoiser(point, t, embedded)  # rows are independent
        diagonal = torch.stack(
            [
                torch.autograd.grad(denoised[:, i].sum(), point, retain_graph=True)[0][:, i]
                for i in range(dim)
            ],
            dim=1,
        )  # (B, D): dD_i / dtheta_i
    jacobian = diagonal.detach().clamp(0.0, 0.5)  # a variance between 0 and T^2
    mean = denoised.detach() / (1 - jacobian)
    return mean, t_max**2 * jacobian / (1 - jacobian)
