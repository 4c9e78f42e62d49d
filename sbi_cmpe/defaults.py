"""Tuned defaults of a training run: its budget, learning rate and noise schedule.

Each rule was chosen with the benchmark on tuning seeds and observations that the reported
table does not use; the measurements are in `benchmarks/TUNING.md`.
"""

from __future__ import annotations

from sbi_cmpe.consistency import P_MEAN
from sbi_cmpe.schedule import NoiseSchedule

__all__ = [
    "LOW_DIM",
    "MID_DIM",
    "MAX_STEPS",
    "HIGH_DIM_MAX_STEPS",
    "STEPS_PER_SIMULATION",
    "LEARNING_RATE",
    "LOW_DIM_LEARNING_RATE",
    "LOW_DIM_P_MEAN",
    "default_num_steps",
    "default_learning_rate",
    "default_p_mean",
    "default_schedule",
]

# Parameter dimensions up to which a run takes `MAX_STEPS` whatever its simulations, and
# draws its training noise levels around `LOW_DIM_P_MEAN`.
LOW_DIM = 3
# Parameter dimensions up to which a run starts at `LOW_DIM_LEARNING_RATE` and may take up to
# `MAX_STEPS` optimizer steps (above: at most `HIGH_DIM_MAX_STEPS`).
MID_DIM = 5
# Optimizer steps of a run with up to `LOW_DIM` parameters, and the ceiling up to `MID_DIM`.
MAX_STEPS = 20_000
# Ceiling on the optimizer steps of a run with more than `MID_DIM` parameters.
HIGH_DIM_MAX_STEPS = 10_000
# Above `LOW_DIM` parameters, optimizer steps per simulation.
STEPS_PER_SIMULATION = 5
# Initial learning rates of Adam above and up to `MID_DIM` parameters.
LEARNING_RATE = 5e-4
LOW_DIM_LEARNING_RATE = 1e-3
# Mean of ln t of the training noise levels with up to `LOW_DIM` parameters.
LOW_DIM_P_MEAN = -2.0


def default_num_steps(theta_dim: int, num_simulations: int) -> int:
    """Optimizer steps of a training run when `max_num_epochs` is not given.

    `MAX_STEPS` (20,000) for up to `LOW_DIM` (3) parameters, whatever the number of
    simulations: low-dimensional posteriors keep improving for that long even with few
    simulations. Above, `STEPS_PER_SIMULATION` (5) steps per simulation, at most `MAX_STEPS`
    for up to `MID_DIM` (5) parameters and at most `HIGH_DIM_MAX_STEPS` (10,000) above, where
    longer runs start to memorize their training parameters. Evidence:
    `benchmarks/TUNING.md#training-budget`.

    Arguments:
        theta_dim: Number of parameter dimensions.
        num_simulations: Number of simulations of the run (training and validation).

    Returns:
        The number of optimizer steps (at least 1).
    """
    if theta_dim <= LOW_DIM:
        return MAX_STEPS
    ceiling = MAX_STEPS if theta_dim <= MID_DIM else HIGH_DIM_MAX_STEPS
    return max(1, min(ceiling, STEPS_PER_SIMULATION * num_simulations))


def default_learning_rate(theta_dim: int) -> float:
    """Initial learning rate of Adam when `learning_rate` is not given.

    `LOW_DIM_LEARNING_RATE` (1e-3) for up to `MID_DIM` (5) parameters, `LEARNING_RATE`
    (5e-4) above, where the larger rate hurt one of the 10-parameter tasks. Evidence:
    `benchmarks/TUNING.md#learning-rate`.

    Arguments:
        theta_dim: Number of parameter dimensions.

    Returns:
        The initial learning rate.
    """
    return LOW_DIM_LEARNING_RATE if theta_dim <= MID_DIM else LEARNING_RATE


def default_p_mean(theta_dim: int) -> float:
    r"""Mean $P_\mathrm{mean}$ of $\ln t$ of the training noise levels, when not given.

    `LOW_DIM_P_MEAN` (-2.0) for up to `LOW_DIM` (3) parameters, iCT's `P_MEAN` (-1.1) above.
    A smaller mean trains more often at small noise levels, where the thin shape of a
    low-dimensional posterior is resolved; above 3 parameters it gained nothing. Evidence:
    `benchmarks/TUNING.md#training-noise-levels-p_mean`.

    Arguments:
        theta_dim: Number of parameter dimensions.

    Returns:
        The mean of $\ln t$ of the lognormal timestep distribution.
    """
    return LOW_DIM_P_MEAN if theta_dim <= LOW_DIM else P_MEAN


def default_schedule(theta_dim: int, **changes: float) -> NoiseSchedule:
    """The noise schedule that `consistency_nn` builds when none is given.

    `NoiseSchedule`'s defaults (the authors' two-moons settings: $\\epsilon = 10^{-3}$,
    $T = 10$, $s_0 = 10$, $s_1 = 50$, $\\rho = 7$) with `default_p_mean(theta_dim)`; `changes`
    replace fields (e.g. `T=5.0`). Evidence:
    `benchmarks/TUNING.md#network-size-and-noise-schedule`.

    Arguments:
        theta_dim: Number of parameter dimensions.
        **changes: Fields of `NoiseSchedule` to set instead.

    Returns:
        The noise schedule.
    """
    return NoiseSchedule(**{"p_mean": default_p_mean(theta_dim), **changes})
