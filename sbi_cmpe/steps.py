r"""Choosing a posterior's number of sampling steps from held-out simulations.

A consistency model's accuracy against its number of sampling steps $K$ is U-shaped, and
where the bottom lies depends on the posterior: one step is blurry, many steps add up the
errors of the network at small noise levels. For a network built with
`consistency_nn(num_steps="auto")` (the default), `CMPEInference.train` scores after training
each $K$ of a small grid (`STEP_GRID`) on the held-out validation simulations
$(\theta_i, x_i)$. It keeps the default $K_0$ = `UNCHOSEN_STEPS` (3), the best on average
over the benchmark's tasks, unless the best-scoring $K_b = \arg\min_K \bar s_K$ beats it
clearly:

$$
K^* = K_b \text{ if } \bar s_{K_0} - \bar s_{K_b} > z\, \mathrm{se}(s_{K_0} - s_{K_b}),
\text{ else } K_0,
$$

where $s_K$ are the per-simulation scores of $K$ steps, $\bar s_K$ their mean, se the
standard error of the paired differences and $z$ = `SWITCH_Z` (2). A validation set holds
few simulations (100 of 1,000), and a choice on a difference it cannot resolve costs more
than it gains: the score's noise is of the size of the differences between neighbouring
numbers of steps, while those differences are large in C2ST.

The score is the Gaussian kernel score, a strictly proper scoring rule,
$S(q, \theta_i) = \tfrac12 \mathbb{E}\, k(Y, Y') - \mathbb{E}\, k(Y, \theta_i)$ with
$Y, Y' \sim q(\cdot \mid x_i)$ and $k(a, b) = \exp(-\|(a - b) / s_i\|^2 / 2 h_i^2)$, where
$s_i$ is the per-dimension standard deviation of the draws for $x_i$ in `UNCHOSEN_STEPS` steps
(`PER_DIMENSION`), so that a dimension the data resolve narrowly weighs as much as a wide one
($s_i = 1$ otherwise, in the training's standardization of the parameters).
Its bandwidth $h_i$ is `BANDWIDTH` (one half) times the median distance between those draws
(divided by $s_i$), the same for every $K$: at the scale of the posterior, so that it sees the
blur of few steps, which the energy score (the validation score of training) is too flat to
resolve. The reference posteriors of the benchmark are never used.
Evidence: `benchmarks/TUNING.md#automatic-steps`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Sequence, Tuple

import torch
from torch import Tensor

from sbi_cmpe.estimator import UNCHOSEN_STEPS, ConsistencyEstimator
from sbi_cmpe.validation import VALIDATION_SIMULATIONS

__all__ = [
    "STEP_GRID",
    "STEP_CHOICE_DRAWS",
    "MAX_DRAWS_PER_SIMULATION",
    "SWITCH_Z",
    "BANDWIDTH",
    "PER_DIMENSION",
    "StepChoice",
    "choose_num_steps",
    "kernel_scores",
    "best_steps",
]

# Numbers of sampling steps among which a posterior chooses its default.
STEP_GRID = (1, 2, 3, 5, 10)
# Least number of posterior draws scored for each number of steps, over all simulations.
STEP_CHOICE_DRAWS = 16_384
# Most draws per simulation (fewer simulations get more draws each, up to this).
MAX_DRAWS_PER_SIMULATION = 128
# Standard errors by which another number of steps must beat the default to replace it.
SWITCH_Z = 2.0
# Kernel bandwidth as a fraction of the median distance between draws for one x.
BANDWIDTH = 0.5
# Whether the kernel score divides each dimension by its spread among the draws for one x.
PER_DIMENSION = True


@dataclass(frozen=True)
class StepChoice:
    """The outcome of `choose_num_steps`.

    Attributes:
        num_steps: The chosen number of steps.
        grid: The numbers of steps scored.
        scores: Mean kernel score of each (`kernel_scores`).
        standard_errors: Standard error of each score's paired difference to the default's.
        num_simulations: Number of held-out simulations scored.
        seconds: Wall time of the choice, in seconds.
    """

    num_steps: int
    grid: Tuple[int, ...]
    scores: Tuple[float, ...]
    standard_errors: Tuple[float, ...]
    num_simulations: int
    seconds: float

    def describe(self) -> str:
        """One line for `repr` and logs, e.g. `3 (auto: kernel score of 1, 2, 3, 5, 10 steps
        on 100 held-out simulations)`."""
        grid = ", ".join(str(k) for k in self.grid)
        return (
            f"{self.num_steps} (auto: kernel score of {grid} steps on "
            f"{self.num_simulations} held-out simulations)"
        )


def best_steps(
    grid: Sequence[int], scores: Tensor, default: int = UNCHOSEN_STEPS, z: float = SWITCH_Z
) -> Tuple[int, Tensor]:
    """The default steps, unless another number of steps scores clearly better (module rule).

    Arguments:
        grid: Numbers of steps, shape `(G,)`; the default must be one of them.
        scores: Per-simulation scores of shape `(G, n)`, lower is better.
        default: The number of steps kept without clear evidence against it.
        z: Standard errors by which the best must beat the default.

    Returns:
        The chosen number of steps and the standard errors `(G,)` of the paired
        differences to the default (zero with one simulation, where the default stays).
    """
    grid = [int(k) for k in grid]
    if default not in grid:
        raise ValueError(f"The default {default} steps must be in the grid {grid}.")
    mean = scores.mean(1)  # (G,)
    home = grid.index(default)
    difference = scores - scores[home]  # (G, n), paired by simulation
    n = scores.shape[1]
    se = difference.std(1) / math.sqrt(n) if n > 1 else torch.zeros_like(mean)  # (G,)
    best = int(mean.argmin())
    gain = float(mean[home] - mean[best])
    clear = n > 1 and gain > z * float(se[best])
    return (grid[best] if clear else default), se


def _draws(
    estimator: ConsistencyEstimator, condition: Tensor, m: int, steps: int, seed: int
) -> Tensor:
    """`m` standardized draws `(b, m, D)` for each of `b` conditions, noise fixed by `seed`."""
    generator = torch.Generator().manual_seed(seed)
    y = estimator.sample((m,), condition, num_steps=steps, generator=generator)
    y = y.reshape(m, len(condition), -1) / estimator.theta_std  # (m, b, D)
    return y.transpose(0, 1)


@torch.no_grad()
def kernel_scores(
    estimator: ConsistencyEstimator,
    theta: Tensor,
    x: Tensor,
    grid: Sequence[int],
    draws_per_simulation: int,
    seed: int = 0,
    chunk: int = 8_192,
    bandwidth: float = BANDWIDTH,
    per_dimension: bool = PER_DIMENSION,
) -> Tensor:
    r"""Kernel scores (module docstring) of each number of steps at each simulation.

    Arguments:
        estimator: The consistency model.
        theta: Parameters of shape `(n, *theta_shape)`.
        x: Simulations of shape `(n, *x_shape)`.
        grid: Numbers of steps, shape `(G,)`.
        draws_per_simulation: Draws $m \geq 2$ per simulation and number of steps.
        seed: Seed of the sampling noise, the same for each number of steps.
        chunk: Largest number of draws per network call.
        bandwidth: Kernel bandwidth $h_i$ as a fraction of the median distance between the
            `UNCHOSEN_STEPS`-step draws for $x_i$.
        per_dimension: Whether each dimension is first divided by the standard deviation of
            the `UNCHOSEN_STEPS`-step draws for $x_i$ in it (where that is positive), so that
            dimensions of different posterior widths weigh alike; otherwise all share the
            training's standardization.

    Returns:
        Scores of shape `(G, n)`, lower is better.
    """
    if not bandwidth > 0:
        raise ValueError(f"bandwidth must be positive, got {bandwidth}.")
    n, dim, m = len(theta), estimator.theta_std.numel(), draws_per_simulation
    device = estimator.theta_std.device
    per_call = max(1, chunk // m)
    scores = torch.empty(len(grid), n)
    for i in range(0, n, per_call):
        truth = theta[i : i + per_call].to(device).reshape(-1, dim) / estimator.theta_std
        condition = x[i : i + per_call].to(device)
        base = _draws(estimator, condition, m, UNCHOSEN_STEPS, seed)  # (b, m, D)
        # Centred on the draws' mean (the kernel ignores shifts): distances of values far
        # from zero in units of a narrow spread would lose digits.
        centre = base.mean(1, keepdim=True)  # (b, 1, D)
        scale = torch.ones_like(centre)
        if per_dimension:
            width = base.std(1, keepdim=True)  # (b, 1, D)
            scale = torch.where(width > 0, width, scale)  # a constant dimension keeps unit scale
        base = (base - centre) / scale  # (b, m, D)
        truth = (truth - centre[:, 0]) / scale[:, 0]  # (b, D)
        h = bandwidth * torch.cdist(base, base).flatten(1).median(1).values  # (b,)
        two_h2 = 2 * h.clamp(min=1e-12)[:, None] ** 2  # (b, 1)
        for g, steps in enumerate(grid):
            if steps == UNCHOSEN_STEPS:
                y = base
            else:
                y = (_draws(estimator, condition, m, steps, seed) - centre) / scale  # (b, m, D)
            to_truth = torch.exp(-((y - truth[:, None]) ** 2).sum(-1) / two_h2).mean(1)
            pairs = torch.exp(-(torch.cdist(y, y) ** 2) / two_h2[:, :, None]).sum((1, 2))
            spread = (pairs - m) / (m * (m - 1))  # off-diagonal mean, (b,)
            scores[g, i : i + per_call] = (0.5 * spread - to_truth).cpu()
    return scores


def choose_num_steps(
    estimator: ConsistencyEstimator,
    theta: Tensor,
    x: Tensor,
    grid: Sequence[int] = STEP_GRID,
    min_draws: int = STEP_CHOICE_DRAWS,
    max_pairs: int = VALIDATION_SIMULATIONS,
    seed: int = 0,
    per_dimension: bool = PER_DIMENSION,
) -> StepChoice:
    """Choose the default number of sampling steps on held-out simulations (module rule).

    Arguments:
        estimator: The trained consistency model.
        theta: Held-out parameters of shape `(n, *theta_shape)`, `n >= 1`.
        x: Their simulations of shape `(n, *x_shape)`.
        grid: Numbers of steps to score, each valid for the estimator's schedule; the
            default `UNCHOSEN_STEPS` is always scored.
        min_draws: Least number of draws per number of steps, over all simulations (at
            least 16 and at most `MAX_DRAWS_PER_SIMULATION` per simulation).
        max_pairs: Most simulations scored (the first ones).
        seed: Seed of the sampling noise (the same for each number of steps).
        per_dimension: Whether the kernel score weighs each dimension by the spread of the
            draws in it (`kernel_scores`).

    Returns:
        The `StepChoice`.
    """
    if len(theta) == 0:
        raise ValueError("Choosing the number of steps needs at least one held-out simulation.")
    grid = tuple(sorted(set(int(k) for k in grid) | {UNCHOSEN_STEPS}))
    for k in grid:
        estimator.schedule.sampling_times(k)  # validates
    start = time.perf_counter()
    theta, x = theta[:max_pairs], x[:max_pairs]
    m = min(MAX_DRAWS_PER_SIMULATION, max(16, math.ceil(min_draws / len(theta))))
    scores = kernel_scores(estimator, theta, x, grid, m, seed, per_dimension=per_dimension)
    chosen, se = best_steps(grid, scores)
    return StepChoice(
        num_steps=chosen,
        grid=grid,
        scores=tuple(round(float(s), 6) for s in scores.mean(1)),
        standard_errors=tuple(round(float(e), 6) for e in se),
        num_simulations=scores.shape[1],
        seconds=time.perf_counter() - start,
    )
