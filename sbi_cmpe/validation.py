r"""Validation of a consistency model during training: the energy score and when to stop.

The consistency loss cannot tell when to stop: it depends on the curriculum's grid, and
a blurry early model scores well on it. The validation score here is the energy score of
posterior draws at held-out simulations, a strictly proper scoring rule of the posterior
the user samples, so its meaning stays the same along the whole curriculum.

How `CMPEInference.train` uses it:

- Spacing: a validation after each epoch that ends at least `MIN_STEPS_PER_VALIDATION` (100)
  optimizer steps after the last one (`validation_interval`), and after the last epoch.
- Final weights: the score fluctuates more than the last, annealed steps of the cosine
  schedule gain, so the run keeps its final weights unless the score ends more than
  `OVERFIT_TOLERANCE` (10%) above its best; then the best weights come back. With few
  simulations this stops a consistency model from memorizing its training parameters
  (an under-dispersed, biased posterior).
- Early stop: only in the last curriculum stage, where the grid no longer changes, does a
  degraded score count. Each degraded validation adds the epochs since the previous
  validation, a validation that is not degraded resets the count, and training stops when
  the count reaches `stop_after_epochs`. Since validations are about 100 steps apart, with
  few batches per epoch (up to about 700 simulations at batch size 128 and patience 20) one
  degraded validation is enough; when the last stage has fewer epochs than the patience (at
  batch size 128, more than about 18,000 simulations with 10,000 steps of consistency
  training, as above 5 parameters or in the second half of a warm-started run of 20,000
  steps, and 36,000 with 20,000) the run ends at its budget.

Evidence for these choices: `benchmarks/TUNING.md#stopping-rule`.
"""

from __future__ import annotations

import math
from copy import deepcopy
from typing import Optional

import torch
from torch import Tensor

from sbi_cmpe.estimator import ConsistencyEstimator

__all__ = [
    "VALIDATION_DRAWS",
    "VALIDATION_SIMULATIONS",
    "MIN_STEPS_PER_VALIDATION",
    "OVERFIT_TOLERANCE",
    "validation_interval",
    "energy_score",
    "is_degraded",
    "StoppingRule",
]

# Least number of posterior draws scored per validation, over all its simulations.
VALIDATION_DRAWS = 2_048
# Most held-out simulations scored per validation (the first ones of the split).
VALIDATION_SIMULATIONS = 512
# Relative excess over the best validation score that counts as overfitting.
OVERFIT_TOLERANCE = 0.1
# Least number of optimizer steps between two validations.
MIN_STEPS_PER_VALIDATION = 100


def validation_interval(batches_per_epoch: int) -> int:
    """Epochs between validations: the fewest that hold `MIN_STEPS_PER_VALIDATION` steps.

    With few simulations (a few batches per epoch) a validation after every epoch would
    cost more than the training.

    Arguments:
        batches_per_epoch: Optimizer steps per epoch.

    Returns:
        The number of epochs, at least 1.
    """
    return max(1, math.ceil(MIN_STEPS_PER_VALIDATION / batches_per_epoch))


@torch.no_grad()
def energy_score(
    estimator: ConsistencyEstimator,
    theta: Tensor,
    x: Tensor,
    min_draws: int = VALIDATION_DRAWS,
    max_pairs: int = VALIDATION_SIMULATIONS,
    seed: int = 0,
    num_steps: Optional[int] = None,
    chunk: int = 4_096,
) -> float:
    r"""Mean energy score of posterior draws at simulations $(\theta_i, x_i)$.

    The first `max_pairs` pairs are scored (a random subset: sbi's validation split is
    a random permutation). For each pair, $m$ draws $Y_j \sim q(\cdot \mid x_i)$ give the
    unbiased estimate
    $\frac1m \sum_j \|Y_j - \theta_i\| - \frac{1}{2m(m-1)} \sum_{j \neq k} \|Y_j - Y_k\|$
    of the energy score, in units of the standardized parameters. It grows when draws are
    biased, too wide, or too narrow (a network that memorizes its training parameters).
    $m = \max(4, \lceil$ `min_draws` $/ n \rceil)$, and the noise is fixed by `seed`, so
    that two calls on the same weights give the same score.

    Arguments:
        estimator: The consistency model.
        theta: Parameters of shape `(n, *theta_shape)`.
        x: Simulations of shape `(n, *x_shape)`.
        min_draws: Least number of draws in total.
        max_pairs: Most pairs scored.
        seed: Seed of the sampling noise.
        num_steps: Sampling steps of the draws; `None` for the estimator's default.
        chunk: Largest number of draws per network call.

    Returns:
        The mean energy score over the scored pairs.
    """
    theta, x = theta[:max_pairs], x[:max_pairs]
    n, dim = len(theta), estimator.theta_std.numel()
    device = estimator.theta_std.device
    m = max(4, math.ceil(min_draws / n))
    generator = torch.Generator().manual_seed(seed)
    per_call = max(1, chunk // m)
    total = 0.0
    for i in range(0, n, per_call):
        truth = theta[i : i + per_call].to(device).reshape(-1, dim)  # (b, D)
        draws = estimator.sample(
            (m,), x[i : i + per_call].to(device), num_steps=num_steps, generator=generator
        )
        draws = draws.reshape(m, len(truth), dim) / estimator.theta_std  # (m, b, D)
        truth = truth / estimator.theta_std
        to_truth = (draws - truth).norm(dim=-1).mean(0)  # (b,)
        per_x = draws.transpose(0, 1)  # (b, m, D)
        spread = torch.cdist(per_x, per_x).sum((1, 2)) / (2 * m * (m - 1))  # (b,)
        total += (to_truth - spread).sum().item()
    return total / n


def is_degraded(score: float, best: float, tolerance: float = OVERFIT_TOLERANCE) -> bool:
    """Whether `score` is clearly, by more than `tolerance` (relative), above `best`.

    Arguments:
        score: The latest validation score (lower is better).
        best: The best score so far.
        tolerance: Relative excess over `best` that counts.

    Returns:
        `True` when the score is worse than `best` by more than the tolerance.
    """
    return score > best + tolerance * abs(best)


class StoppingRule:
    """The validation schedule and stopping rule of the module docstring.

    Arguments:
        every: Epochs between validations (`validation_interval`).

    Attributes:
        every: Epochs between validations; a resumed run may set it anew.
        last_epoch: Epoch of the last validation (0 before the first).
        best_score: The lowest validation score so far.
        best_state: The weights (`state_dict`) that scored it.
        degraded_epochs: Epochs counted towards `stop_after_epochs` (see the module
            docstring).
    """

    def __init__(self, every: int = 1) -> None:
        self.every = every
        self.last_epoch = 0
        self.best_score = float("inf")
        self.best_state: Optional[dict] = None
        self.degraded_epochs = 0

    def due(self, epoch: int, last: bool) -> bool:
        """Whether to validate after `epoch`: `every` epochs after the last validation,
        and after the last epoch of the run (`last`)."""
        return last or epoch - self.last_epoch >= self.every

    def update(
        self,
        score: float,
        net: torch.nn.Module,
        final_stage: bool,
        epoch: int,
        stop_after_epochs: int,
    ) -> bool:
        """Record the validation score after `epoch`; returns whether training should stop.

        Only in the last stage of the curriculum (the finest grid) does a degraded score
        count towards stopping: before, the score moves with the grid and with the noise
        of a large learning rate, and stopping there cut runs short
        (`benchmarks/TUNING.md#stopping-rule`). Small fluctuations are no reason to stop
        either: the annealed weights at the end of the cosine schedule are better than its
        noise can show.

        Arguments:
            score: The validation score of `net` now.
            net: The network, whose weights are kept when the score is the best so far.
            final_stage: Whether the curriculum is in its last stage.
            epoch: The epoch just validated; the epochs since the last validation count.
            stop_after_epochs: The patience, in epochs of the last stage.
        """
        since, self.last_epoch = epoch - self.last_epoch, epoch
        if score < self.best_score:
            self.best_score = score
            self.best_state = deepcopy(net.state_dict())
        counts = final_stage and is_degraded(score, self.best_score)
        self.degraded_epochs = self.degraded_epochs + since if counts else 0
        return self.degraded_epochs >= stop_after_epochs

    def weights_to_restore(self, final_score: float) -> Optional[dict]:
        """The best weights when the run's final score is degraded against them, else `None`
        (the run keeps its final weights)."""
        if self.best_state is not None and is_degraded(final_score, self.best_score):
            return self.best_state
        return None
