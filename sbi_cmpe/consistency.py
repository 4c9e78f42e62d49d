r"""The mathematics of consistency models, as small pure functions.

Consistency model posterior estimation (CMPE) learns a *consistency function*
$f_\phi(\theta_t, t, x)$ that maps any point $\theta_t = \theta + t z$ of the
variance-exploding noising path back to its origin $\theta \sim p(\theta \mid x)$:

$$ f(\theta_t, t, x) = c_\mathrm{skip}(t)\, \theta_t + c_\mathrm{out}(t)\,
   F_\phi(\theta_t, t, x) $$

with the EDM-style scalings (Karras et al., 2022; Song et al., 2023)

$$ c_\mathrm{skip}(t) = \frac{\sigma^2}{(t - \epsilon)^2 + \sigma^2}, \qquad
   c_\mathrm{out}(t) = \frac{\sigma (t - \epsilon)}{\sqrt{\sigma^2 + t^2}}, $$

so that $f(\theta, \epsilon, x) = \theta$ holds exactly (the boundary condition).
Training follows *improved consistency training* (iCT): a discretization of
$[\epsilon, T]$ that is refined along a curriculum, time steps drawn from a discrete
lognormal, weights $\lambda = 1 / (t_{n+1} - t_n)$, a pseudo-Huber distance and a
teacher that is the student under stop-gradient.

Every function here works on plain tensors. Shapes use `B` for the batch and `D` for
the (flattened) parameter dimension.

References:
    | Consistency Models for Scalable and Fast Simulation-Based Inference
    | Schmitt, Pratz, Köthe, Bürkner and Radev, NeurIPS 2024
    | https://arxiv.org/abs/2312.05440

    | Improved Techniques for Training Consistency Models (iCT)
    | Song and Dhariwal, ICLR 2024
    | https://arxiv.org/abs/2310.14189

    | Consistency Models
    | Song, Dhariwal, Chen and Sutskever, ICML 2023
    | https://arxiv.org/abs/2303.01469
"""

from __future__ import annotations

import math
from typing import Callable, Tuple

import torch
from torch import Tensor

__all__ = [
    "P_MEAN",
    "P_STD",
    "scalings",
    "karras_grid",
    "num_discretization_steps",
    "timestep_probabilities",
    "pseudo_huber",
    "training_pairs",
    "consistency_distance",
    "consistency_teacher",
    "consistency_loss",
    "sampling_times",
]

# iCT's lognormal distribution of the training noise levels: mean and standard deviation
# of ln t (see `timestep_probabilities`).
P_MEAN = -1.1
P_STD = 2.0

# A consistency function: (theta_t (B, D), t (B,), x_embedded (B, C)) -> (B, D).
ConsistencyFn = Callable[[Tensor, Tensor, Tensor], Tensor]


def scalings(t: Tensor, eps: float, sigma_data: float = 1.0) -> tuple[Tensor, Tensor]:
    r"""Skip and output scalings of the consistency function.

    $c_\mathrm{skip}(t) = \sigma^2 / ((t - \epsilon)^2 + \sigma^2)$ and
    $c_\mathrm{out}(t) = \sigma (t - \epsilon) / \sqrt{\sigma^2 + t^2}$, hence
    $c_\mathrm{skip}(\epsilon) = 1$ and $c_\mathrm{out}(\epsilon) = 0$.

    Arguments:
        t: Noise levels, any shape.
        eps: Smallest noise level $\epsilon$.
        sigma_data: Standard deviation $\sigma$ of the (standardized) parameters.

    Returns:
        `(c_skip, c_out)`, each of the shape of `t`.
    """
    s2 = sigma_data**2
    c_skip = s2 / ((t - eps) ** 2 + s2)
    c_out = sigma_data * (t - eps) / torch.sqrt(s2 + t**2)
    return c_skip, c_out


def karras_grid(num_points: int, eps: float, T: float, rho: float = 7.0) -> Tensor:
    r"""Increasing noise levels of Karras et al. (2022), from $\epsilon$ to $T$.

    $t_i = (\epsilon^{1/\rho} + \tfrac{i - 1}{N - 1} (T^{1/\rho} - \epsilon^{1/\rho}))^\rho$
    for $i = 1, \dots, N$.

    Arguments:
        num_points: Number of points $N \geq 2$.
        eps: Smallest noise level $\epsilon > 0$.
        T: Largest noise level $T > \epsilon$.
        rho: Curvature $\rho$; larger values put more points near $\epsilon$.

    Returns:
        Noise levels of shape `(N,)`, strictly increasing, `t[0] = eps`, `t[-1] = T`.
    """
    if num_points < 2:
        raise ValueError(f"A grid needs at least 2 points, got num_points={num_points}.")
    if not 0 < eps < T:
        raise ValueError(f"Need 0 < eps < T, got eps={eps} and T={T}.")
    u = torch.linspace(0.0, 1.0, num_points, dtype=torch.float64)
    lo, hi = eps ** (1 / rho), T ** (1 / rho)
    t = (lo + u * (hi - lo)) ** rho
    t[0], t[-1] = eps, T  # exact end points despite floating point
    return t.float()


def num_discretization_steps(step: int, total_steps: int, s0: int, s1: int) -> int:
    r"""Number of grid points $N(k)$ of the iCT curriculum at optimizer step $k$.

    iCT doubles the number of intervals from $s_0$ up to $s_1$:
    $N(k) = \min(s_0 2^{j(k)}, s_1) + 1$. Its stage index $j(k) = \lfloor k / K' \rfloor$
    with $K' = \lfloor K / (\log_2 \lfloor s_1 / s_0 \rfloor + 1) \rfloor$ depends on
    rounding and, with a floor on the logarithm, never reaches $s_1$. Here the $K$ steps
    are split into $J = \lceil \log_2 (s_1 / s_0) \rceil + 1$ stages of equal length,
    $j(k) = \lceil (k + 1) J / K \rceil - 1$, so that any run, however short, uses $s_1$
    intervals in its last step and the schedule never goes backwards.

    Arguments:
        step: Optimizer step $k \in \{0, \dots, K - 1\}$ (clamped into this range).
        total_steps: Number of optimizer steps $K \geq 1$ the run really takes.
        s0: Initial number of intervals (authors' default 10).
        s1: Final number of intervals (authors' default 50).

    Returns:
        The number of grid points $N(k)$ (intervals + 1).
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}.")
    if not 1 <= s0 <= s1:
        raise ValueError(f"Need 1 <= s0 <= s1, got s0={s0} and s1={s1}.")
    step = min(max(step, 0), total_steps - 1)
    num_stages = math.ceil(math.log2(s1 / s0)) + 1
    stage = math.ceil((step + 1) * num_stages / total_steps) - 1
    return min(s0 * 2**stage, s1) + 1


def timestep_probabilities(grid: Tensor, p_mean: float = P_MEAN, p_std: float = P_STD) -> Tensor:
    r"""Discrete lognormal distribution over the intervals of a grid (iCT).

    $p(n) \propto \mathrm{erf}(\frac{\ln t_{n+1} - P_\mathrm{mean}}{\sqrt 2 P_\mathrm{std}})
    - \mathrm{erf}(\frac{\ln t_n - P_\mathrm{mean}}{\sqrt 2 P_\mathrm{std}})$.

    Arguments:
        grid: Increasing noise levels of shape `(N,)`.
        p_mean: Mean of $\ln t$ (iCT: -1.1).
        p_std: Standard deviation of $\ln t$ (iCT: 2.0).

    Returns:
        Probabilities of shape `(N - 1,)` that sum to one.
    """
    cdf = torch.erf((grid.log() - p_mean) / (math.sqrt(2.0) * p_std))
    p = cdf[1:] - cdf[:-1]
    return p / p.sum()


def pseudo_huber(a: Tensor, b: Tensor, c: float) -> Tensor:
    r"""Pseudo-Huber distance on the vector norm, $\sqrt{\|a - b\|^2 + c^2} - c$.

    We use the norm over all parameter dimensions (as iCT) rather than an element-wise
    distance: it is a metric on $\mathbb{R}^D$ and its scale $c = 0.00054 \sqrt{D}$
    grows with the dimension as iCT prescribes.

    Arguments:
        a: Tensor of shape `(B, D)`.
        b: Tensor of shape `(B, D)`.
        c: Positive constant $c$.

    Returns:
        Distances of shape `(B,)`.
    """
    return torch.sqrt(((a - b) ** 2).sum(dim=-1) + c**2) - c


def training_pairs(
    grid: Tensor,
    batch: int,
    dim: int,
    p_mean: float = P_MEAN,
    p_std: float = P_STD,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor, Tensor]:
    r"""Adjacent noise levels $t_n < t_{n+1}$ of a grid and the noise $z$ of a batch.

    $n$ is drawn from the discrete lognormal (`timestep_probabilities`) and
    $z \sim \mathcal{N}(0, I)$; with a `generator`, both are drawn on the CPU, so that a
    fixed-noise loss is the same on every device.

    Arguments:
        grid: Increasing noise levels of shape `(N,)`.
        batch: Batch size $B$.
        dim: Parameter dimension $D$.
        p_mean: Mean of $\ln t$ for the timestep distribution.
        p_std: Standard deviation of $\ln t$ for the timestep distribution.
        generator: Optional random generator.
        device: Device of the results.
        dtype: Dtype of $z$.

    Returns:
        `(t_lo (B,), t_hi (B,), z (B, D))`.
    """
    grid = grid.to(device)
    probs = timestep_probabilities(grid, p_mean, p_std)
    where = "cpu" if generator is not None else device
    n = torch.multinomial(probs.to(where), batch, replacement=True, generator=generator)
    z = torch.randn(batch, dim, generator=generator, device=where)
    n, z = n.to(device), z.to(device, dtype)
    return grid[n], grid[n + 1], z


def consistency_distance(
    student: Tensor, teacher: Tensor, t_lo: Tensor, t_hi: Tensor, huber_c: float | None = None
) -> Tensor:
    r"""$\lambda(t_n)\, d(\text{student}, \text{teacher})$ with $\lambda = 1 / (t_{n+1} - t_n)$
    and the pseudo-Huber distance $d$ with $c = 0.00054 \sqrt{D}$ unless given.

    Arguments:
        student: $f_\phi(\theta + t_{n+1} z, t_{n+1}, x)$ of shape `(B, D)`.
        teacher: $\mathrm{sg}[f_\phi(\theta + t_n z, t_n, x)]$ of shape `(B, D)`.
        t_lo: $t_n$ of shape `(B,)`.
        t_hi: $t_{n+1}$ of shape `(B,)`.
        huber_c: Pseudo-Huber constant.

    Returns:
        Loss per element of the batch, shape `(B,)`.
    """
    if huber_c is None:
        huber_c = 0.00054 * math.sqrt(student.shape[-1])
    return pseudo_huber(student, teacher, huber_c) / (t_hi - t_lo)


def consistency_teacher(
    f: ConsistencyFn,
    theta: Tensor,
    z: Tensor,
    t_lo: Tensor,
    condition: Tensor,
    eps: float,
    warm_start: bool = False,
) -> tuple[Tensor, Tensor]:
    r"""The teacher $\mathrm{sg}[f_\phi(\theta + t_n z, t_n, x)]$ and its $t_n$.

    In the warm start $t_n = \epsilon$, where the boundary condition gives the teacher
    $\theta + \epsilon z$ without a network call: the loss then trains $f$ towards the
    centre of $p(\theta \mid \theta_t, x)$, a denoiser, from which consistency training
    starts, as easy consistency tuning (Geng et al., 2024) starts from a diffusion model.

    Arguments:
        f: Consistency function `(theta_t (B, D), t (B,), condition) -> (B, D)`.
        theta: Standardized parameters of shape `(B, D)`.
        z: The noise of the batch, shape `(B, D)`.
        t_lo: $t_n$ of shape `(B,)`.
        condition: Condition, as `f` expects it.
        eps: Smallest noise level $\epsilon$.
        warm_start: Whether the teacher sits at $\epsilon$.

    Returns:
        `(t_n (B,), teacher (B, D))`.
    """
    if warm_start:
        t_lo = torch.full_like(t_lo, eps)
        return t_lo, theta + t_lo[:, None] * z
    with torch.no_grad():
        return t_lo, f(theta + t_lo[:, None] * z, t_lo, condition)  # (B, D)


def consistency_loss(
    f: ConsistencyFn,
    theta: Tensor,
    condition: Tensor,
    grid: Tensor,
    p_mean: float = P_MEAN,
    p_std: float = P_STD,
    huber_c: float | None = None,
    generator: torch.Generator | None = None,
    warm_start: bool = False,
) -> Tensor:
    r"""Improved consistency training loss for a batch.

    $\mathcal{L} = \lambda(t_n)\, d\big(f_\phi(\theta + t_{n+1} z, t_{n+1}, x),\
    \mathrm{sg}[f_\phi(\theta + t_n z, t_n, x)]\big)$ with $n$ from the discrete
    lognormal, one $z \sim \mathcal{N}(0, I)$ shared by both calls,
    $\lambda(t_n) = 1 / (t_{n+1} - t_n)$ and the pseudo-Huber distance $d$. The teacher
    ($\mathrm{sg}$, stop-gradient) is the student itself: no EMA network. In the warm start
    $t_n = \epsilon$ (`consistency_teacher`).

    Arguments:
        f: Consistency function `(theta_t (B, D), t (B,), condition) -> (B, D)`.
        theta: Standardized parameters of shape `(B, D)`.
        condition: Condition (already embedded or raw, as `f` expects), batch first.
        grid: Increasing noise levels of shape `(N,)` for the current curriculum stage;
            `grid[0]` is $\epsilon$.
        p_mean: Mean of $\ln t$ for the timestep distribution.
        p_std: Standard deviation of $\ln t$ for the timestep distribution.
        huber_c: Pseudo-Huber constant; `None` gives $0.00054 \sqrt{D}$.
        generator: Optional random generator (for a loss with fixed noise).
        warm_start: Whether the teacher sits at $\epsilon$ (the warm start of a run).

    Returns:
        Loss per element of the batch, shape `(B,)`.
    """
    batch, dim = theta.shape
    t_lo, t_hi, z = training_pairs(
        grid, batch, dim, p_mean, p_std, generator, theta.device, theta.dtype
    )
    student = f(theta + t_hi[:, None] * z, t_hi, condition)  # (B, D)
    t_lo, teacher = consistency_teacher(
        f, theta, z, t_lo, condition, float(grid[0]), warm_start
    )  # (B,), (B, D)
    return consistency_distance(student, teacher, t_lo, t_hi, huber_c)


def sampling_times(
    num_steps: int,
    eps: float,
    T: float,
    rho: float = 7.0,
    step_levels: Tuple[Tuple[float, ...], ...] = (),
) -> Tensor:
    r"""Decreasing noise levels $T = \tau_1 > \dots > \tau_K > \epsilon$ for sampling.

    The first $K$ points of a Karras grid of $K + 1$ points from $T$ down to
    $\epsilon$; the last point $\epsilon$ is left out because a step to it adds no
    noise and returns its input unchanged. A tuple of `step_levels` with $K - 1$ levels
    gives $\tau_2, \dots, \tau_K$ instead (e.g. `((0.4, 0.05),)` for 3 steps).

    Arguments:
        num_steps: Number of network evaluations $K \geq 1$.
        eps: Smallest noise level $\epsilon$.
        T: Largest noise level $T$.
        rho: Curvature of the grid.
        step_levels: Levels after $T$ for some numbers of steps, each decreasing within
            $(\epsilon, T)$ (`NoiseSchedule` checks them).

    Returns:
        Noise levels of shape `(K,)`, decreasing, starting at `T`.
    """
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be an int >= 1, got {num_steps!r}.")
    for levels in step_levels:
        if len(levels) == num_steps - 1:
            return torch.tensor([T, *levels], dtype=torch.float32)  # as the grid's
    return karras_grid(num_steps + 1, eps, T, rho).flip(0)[:num_steps]
