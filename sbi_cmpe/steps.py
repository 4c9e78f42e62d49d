r"""Choosing a posterior's number of sampling steps from held-out simulations.

A consistency model's accuracy against its number of sampling steps $K$ is U-shaped, and
where the bottom lies depends on the posterior: one step is blurry, many steps add up the
errors of the network at small noise levels. After training, `CMPEInference.train` scores
each $K$ of a small grid (`STEP_GRID`) by the energy score of draws at the held-out
validation simulations (`sbi_cmpe.validation.energy_scores`) and keeps the fewest steps
whose score is within one standard error of the best (the one-standard-error rule):

$$
K^* = \min \{ K : \bar s_K - \bar s_{K_b} \leq \mathrm{se}(s_K - s_{K_b}) \}, \quad
K_b = \arg\min_K \bar s_K,
$$

where $s_K$ are the per-simulation scores of $K$ steps, $\bar s_K$ their mean and
$\mathrm{se}$ the standard error of the paired differences. Fewer steps sample faster, so a
difference the validation set cannot resolve goes to them. The reference posteriors of the
benchmark are never used.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Sequence, Tuple

import torch
from torch import Tensor

from sbi_cmpe.estimator import ConsistencyEstimator
from sbi_cmpe.validation import VALIDATION_SIMULATIONS, energy_scores

__all__ = ["STEP_GRID", "STEP_CHOICE_DRAWS", "StepChoice", "choose_num_steps"]

# Numbers of sampling steps among which a posterior chooses its default.
STEP_GRID = (1, 2, 3, 5, 10)
# Least number of posterior draws scored for each number of steps, over all simulations.
STEP_CHOICE_DRAWS = 8_192


@dataclass(frozen=True)
class StepChoice:
    """The outcome of `choose_num_steps`.

    Attributes:
        num_steps: The chosen number of steps.
        grid: The numbers of steps scored.
        scores: Mean energy score of each, in units of the standardized parameters.
        standard_errors: Standard error of each score's difference to the best score.
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
        """One line for `repr` and logs, e.g. `3 (auto: best energy score of 1, 2, 3, 5, 10
        steps on 100 held-out simulations)`."""
        grid = ", ".join(str(k) for k in self.grid)
        return (
            f"{self.num_steps} (auto: best energy score of {grid} steps on "
            f"{self.num_simulations} held-out simulations)"
        )


def one_standard_error_choice(grid: Sequence[int], scores: Tensor) -> Tuple[int, Tensor]:
    """The fewest steps within one standard error of the best (the module's rule).

    Arguments:
        grid: Numbers of steps, shape `(G,)`.
        scores: Per-simulation scores of shape `(G, n)`, lower is better.

    Returns:
        The chosen number of steps and the standard errors `(G,)` of the paired
        differences to the best (zero with one simulation, where the best mean wins).
    """
    mean = scores.mean(1)  # (G,)
    best = int(mean.argmin())
    difference = scores - scores[best]  # (G, n), paired by simulation
    n = scores.shape[1]
    se = difference.std(1) / math.sqrt(n) if n > 1 else torch.zeros_like(mean)  # (G,)
    eligible = [k for k, gap, e in zip(grid, mean - mean[best], se) if gap <= e]
    return min(eligible), se


def choose_num_steps(
    estimator: ConsistencyEstimator,
    theta: Tensor,
    x: Tensor,
    grid: Sequence[int] = STEP_GRID,
    min_draws: int = STEP_CHOICE_DRAWS,
    max_pairs: int = VALIDATION_SIMULATIONS,
    seed: int = 0,
) -> StepChoice:
    """Choose the default number of sampling steps on held-out simulations (module rule).

    Arguments:
        estimator: The trained consistency model.
        theta: Held-out parameters of shape `(n, *theta_shape)`, `n >= 1`.
        x: Their simulations of shape `(n, *x_shape)`.
        grid: Numbers of steps to score, each valid for the estimator's schedule.
        min_draws: Least number of draws per number of steps, over all simulations.
        max_pairs: Most simulations scored (the first ones).
        seed: Seed of the sampling noise (the same for each number of steps).

    Returns:
        The `StepChoice`.
    """
    if len(theta) == 0:
        raise ValueError("Choosing the number of steps needs at least one held-out simulation.")
    grid = tuple(sorted(set(int(k) for k in grid)))
    for k in grid:
        estimator.schedule.sampling_times(k)  # validates
    start = time.perf_counter()
    scores = torch.stack(
        [energy_scores(estimator, theta, x, min_draws, max_pairs, seed, num_steps=k) for k in grid]
    )  # (G, n)
    chosen, se = one_standard_error_choice(grid, scores)
    return StepChoice(
        num_steps=chosen,
        grid=grid,
        scores=tuple(round(float(s), 6) for s in scores.mean(1)),
        standard_errors=tuple(round(float(e), 6) for e in se),
        num_simulations=scores.shape[1],
        seconds=time.perf_counter() - start,
    )
