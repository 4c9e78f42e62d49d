"""How long and how fast a training run goes: its budget, learning rate, noise levels and
validation spacing.

The iCT curriculum itself (the grid size $N(k)$ at optimizer step $k$) is part of the
maths in `sbi_cmpe.consistency`; this module holds the choices around it that the benchmark
tuned.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch.nn.utils import clip_grad_norm_
from torch.optim import Adam

from sbi_cmpe.consistency import P_MEAN

try:  # torch >= 2.6
    from torch.nn.utils import clip_grads_with_norm_, get_total_norm
except ImportError:  # pragma: no cover - older torch
    clip_grads_with_norm_ = get_total_norm = None

__all__ = [
    "DEFAULT_NUM_STEPS",
    "LOW_DIM_NUM_STEPS",
    "LOW_DIM",
    "STEPS_PER_SIMULATION",
    "MIN_STEPS_PER_VALIDATION",
    "LEARNING_RATE",
    "LOW_DIM_LEARNING_RATE",
    "LOW_DIM_LR_MAX_DIM",
    "LOW_DIM_P_MEAN",
    "default_num_steps",
    "default_learning_rate",
    "default_p_mean",
    "cosine_learning_rate",
    "validation_interval",
    "adam",
    "clip_gradients",
]

# Optimizer steps of a run when `max_num_epochs` is not given (see `default_num_steps`).
DEFAULT_NUM_STEPS = 10_000
LOW_DIM_NUM_STEPS = 20_000
# Parameter dimensions up to which a run takes `LOW_DIM_NUM_STEPS` whatever its simulations.
LOW_DIM = 3
# Above `LOW_DIM`, at most this many optimizer steps per simulation.
STEPS_PER_SIMULATION = 5
# Initial learning rates when `learning_rate` is not given (see `default_learning_rate`).
LEARNING_RATE = 5e-4
LOW_DIM_LEARNING_RATE = 1e-3
# Parameter dimensions up to which a run starts at `LOW_DIM_LEARNING_RATE` and may take up
# to `LOW_DIM_NUM_STEPS` optimizer steps (above: at most `DEFAULT_NUM_STEPS`).
LOW_DIM_LR_MAX_DIM = 5
# Mean of ln t of the training noise levels for parameters of up to `LOW_DIM` dimensions
# (see `default_p_mean`; above, iCT's `P_MEAN`).
LOW_DIM_P_MEAN = -2.0
# Least number of optimizer steps between two validations.
MIN_STEPS_PER_VALIDATION = 100


def default_num_steps(theta_dim: int, num_simulations: int) -> int:
    """Optimizer steps of a training run when `max_num_epochs` is not given.

    `LOW_DIM_NUM_STEPS` (20,000) for parameters of up to `LOW_DIM` (3) dimensions;
    above, `STEPS_PER_SIMULATION` (5) per simulation, at most `LOW_DIM_NUM_STEPS` for up to
    `LOW_DIM_LR_MAX_DIM` (5) parameters (the runs that also start at the larger learning
    rate) and at most `DEFAULT_NUM_STEPS` (10,000) above. Measured with the benchmark
    (128-wide network, 3 sampling steps; tuning seeds and observations 6–8, not the reported
    table):

    - Two-dimensional posteriors keep improving well past 10,000 steps, with few
      simulations too (two moons, 10,000 simulations: C2ST 0.72, 0.60, 0.56 after 10,000,
      20,000, 40,000 steps; 1,000 simulations: 0.80, 0.75, 0.73, 0.64 after 1,000, 2,500,
      5,000, 20,000).
    - In 10 dimensions the network starts to fit its training parameters: gaussian_linear
      with 10,000 simulations gets worse after 10,000 steps (two seeds: 0.59 after 10,000,
      0.68 after 20,000), and with 1,000 simulations 5,000 steps are as accurate as 10,000
      or better (seeds 1, 2, 5, mean C2ST at 10,000 / 5,000 / 2,500 steps: bernoulli_glm
      0.826 / 0.743 / 0.729, gaussian_linear 0.715 / 0.713 / 0.759, slcp 0.972 / 0.973 /
      0.967) in half the time.
    - Neither rule is one setting's loss (seeds 1 and 2, 10,000 simulations,
      `benchmark_results_tuning5/`): two moons gains 0.013 from 40,000 steps (0.574 ->
      0.561; gaussian_mixture 0.680 -> 0.681) for twice the training time, and batch size
      512 gains less (0.566); gaussian_linear prefers 5,000 steps (0.592 -> 0.561) where
      bernoulli_glm and slcp lose 0.02-0.03 (0.618 -> 0.640, 0.871 -> 0.901), and nothing
      known at training time tells gaussian_linear from bernoulli_glm (both 10 parameters).
    - With 10,000 simulations five parameters behave like two, not like ten: slcp gains from
      steps past 10,000 (seeds 1 / 2: 0.872 / 0.870 after 10,000 steps, 0.839 / 0.856 after
      15,000, 0.832 / 0.858 after 20,000; `benchmark_results_tuning6/`). With 1,000
      simulations a budget of 20,000 steps is no better than one of 5,000 (seed 1: 0.973
      both; the runs stopped early at 15,120 and 3,885 steps; `benchmark_results_tuning4/`),
      so the per-simulation rule stays.

    Arguments:
        theta_dim: Number of parameter dimensions.
        num_simulations: Number of simulations of the run (training and validation).

    Returns:
        The number of optimizer steps (at least 1).
    """
    if theta_dim <= LOW_DIM:
        return LOW_DIM_NUM_STEPS
    ceiling = LOW_DIM_NUM_STEPS if theta_dim <= LOW_DIM_LR_MAX_DIM else DEFAULT_NUM_STEPS
    return max(1, min(ceiling, STEPS_PER_SIMULATION * num_simulations))


def default_learning_rate(theta_dim: int) -> float:
    """Initial learning rate of Adam when `learning_rate` is not given.

    `LOW_DIM_LEARNING_RATE` (1e-3) for parameters of up to `LOW_DIM_LR_MAX_DIM` (5) dimensions,
    `LEARNING_RATE` (5e-4) above. Measured with the benchmark at the default budgets
    (seed 1, observations 6–8, not the reported table; mean C2ST at 5e-4 / 1e-3):
    two moons 0.594 / 0.574 (10,000 simulations) and 0.634 / 0.639 (1,000); slcp
    0.893 / 0.872 and 0.975 / 0.973; gaussian_mixture (10,000) 0.682 / 0.682. In 10
    dimensions the larger rate helps bernoulli_glm at 1,000 simulations (0.836 / 0.783)
    but hurts gaussian_linear at 10,000 (0.571 / 0.669; 0.633 at 7e-4), so the smaller
    rate stays there.

    Arguments:
        theta_dim: Number of parameter dimensions.

    Returns:
        The initial learning rate.
    """
    return LOW_DIM_LEARNING_RATE if theta_dim <= LOW_DIM_LR_MAX_DIM else LEARNING_RATE


def default_p_mean(theta_dim: int) -> float:
    r"""Mean $P_\mathrm{mean}$ of $\ln t$ of the training noise levels, when not given.

    `LOW_DIM_P_MEAN` (-2.0) for parameters of up to `LOW_DIM` (3) dimensions, iCT's `P_MEAN`
    (-1.1) above; the standard deviation stays iCT's 2.0. A smaller mean trains more often at
    small noise levels, where the thin shape of a low-dimensional posterior is resolved.
    Measured with the benchmark at the default budgets (tuning seeds 1 and 2, observations
    6–8, not the reported table; `benchmark_results_tuning7/`), mean C2ST at -1.1 / -2.0:

    - two moons, 10,000 simulations: 0.573 / 0.550 (both seeds gain: 0.571 -> 0.553 and
      0.576 -> 0.546; -3.0 gives 0.544, -0.5 gives 0.646); gaussian_mixture 0.683 / 0.686
      (-0.5: 0.674, -3.0: 0.687). With 1,000 simulations (seed 1) 0.639 / 0.642 and
      0.715 / 0.717. On sbi's three-parameter linear Gaussian (analytic posterior,
      10,000 simulations) it gains nothing: seeds 1 / 2 give 0.523 / 0.510 at -1.1 and
      0.531 / 0.511 at -2.0.
    - On the benchmark's own seeds (observations 1–5) two moons gained as on the tuning
      seeds (10,000 simulations, 5 seeds: 0.576 / 0.550) and gaussian_mixture lost a little
      (0.675 / 0.681; 0.706 / 0.714 at 1,000 simulations, 3 seeds).
    - Above 3 parameters nothing gains beyond one seed's noise, and at 1,000 simulations
      the 10-parameter tasks lose a little, so iCT's value stays there: slcp 0.845 / 0.847
      (10,000 simulations) and 0.973 / 0.970 (1,000; seeds 1, 2, 5); gaussian_linear
      0.591 / 0.588 and 0.713 / 0.722; bernoulli_glm 0.616 / 0.616 and 0.744 / 0.749.

    Arguments:
        theta_dim: Number of parameter dimensions.

    Returns:
        The mean of $\ln t$ of the lognormal timestep distribution.
    """
    return LOW_DIM_P_MEAN if theta_dim <= LOW_DIM else P_MEAN


def cosine_learning_rate(step: int, total_steps: int, base: float) -> float:
    r"""Cosine decay from `base` at step 0 towards 0 at step $K$:
    $\eta_k = \tfrac12 \eta_0 (1 + \cos(\pi k / K))$.

    Arguments:
        step: Optimizer step $k$.
        total_steps: Steps $K$ of the run.
        base: Initial learning rate $\eta_0$.

    Returns:
        The learning rate of step $k$.
    """
    return 0.5 * base * (1 + math.cos(math.pi * step / total_steps))


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


def adam(parameters: Iterable[torch.nn.Parameter], lr: float, device: str) -> Adam:
    """Adam, fused (one kernel for all parameters, about 15% of a CPU step saved) where
    torch supports it on `device`.

    Arguments:
        parameters: The parameters to optimize.
        lr: Learning rate.
        device: The training device.

    Returns:
        The optimizer.
    """
    parameters = list(parameters)
    if torch.device(device).type in ("cpu", "cuda"):
        try:
            return Adam(parameters, lr=lr, fused=True)
        except RuntimeError:  # fused Adam on this device needs a newer torch
            pass
    return Adam(parameters, lr=lr)


def clip_gradients(parameters: Iterable[torch.nn.Parameter], max_norm: float | None) -> float:
    r"""Total gradient norm, with the gradients scaled as `torch.nn.utils.clip_grad_norm_`.

    `clip_grad_norm_` scales by $\min(1, m / (\|g\| + 10^{-6}))$ in every step, also by 1
    when the norm is small; here the scaling runs only when the factor is below 1. The
    result is the same up to float32 rounding at the threshold (a factor of 0.99999994
    there is skipped).

    Arguments:
        parameters: Parameters whose gradients are measured (and clipped).
        max_norm: Largest total norm $m > 0$; `None` to measure only.

    Returns:
        The total norm before clipping (not finite when a gradient is not).
    """
    params = [p for p in parameters if p.grad is not None]
    if get_total_norm is None:  # older torch: the one-call form
        return float(clip_grad_norm_(params, float("inf") if max_norm is None else max_norm))
    norm = get_total_norm([p.grad for p in params])  # ()
    value = norm.item()
    if max_norm is not None and value + 1e-6 > max_norm:
        clip_grads_with_norm_(params, max_norm, norm)
    return value
