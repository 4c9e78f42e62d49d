"""Tuned defaults of a training run: its budget, learning rate and noise schedule.

Each rule was chosen with the benchmark on tuning seeds and observations that the reported
table does not use; the measurements are in `benchmarks/TUNING.md`.
"""

from __future__ import annotations

from typing import Any

from sbi_cmpe.consistency import P_MEAN
from sbi_cmpe.schedule import NoiseSchedule

__all__ = [
    "WARM_DIM",
    "LOW_DIM",
    "MID_DIM",
    "MAX_STEPS",
    "MANY_SIMULATIONS",
    "MANY_SIMULATIONS_MAX_STEPS",
    "HIGH_DIM_MAX_STEPS",
    "STEPS_PER_SIMULATION",
    "WARM_STEPS_PER_SIMULATION",
    "WARM_START",
    "LEARNING_RATE",
    "LOW_DIM_LEARNING_RATE",
    "LOW_DIM_P_MEAN",
    "STEP_LEVELS",
    "default_num_steps",
    "default_warm_start",
    "default_learning_rate",
    "default_p_mean",
    "default_step_levels",
    "default_schedule",
]

# Parameter dimensions up to which a run on a new network starts with a warm start of
# `WARM_START` of its steps, and a run takes `WARM_STEPS_PER_SIMULATION` steps per
# simulation, up to `MAX_STEPS` (`MANY_SIMULATIONS_MAX_STEPS` from `MANY_SIMULATIONS` on).
WARM_DIM = 2
# Fraction of the steps in the warm start, up to `WARM_DIM` parameters.
WARM_START = 0.5
# Up to `WARM_DIM` parameters, optimizer steps per simulation.
WARM_STEPS_PER_SIMULATION = 10
# Parameter dimensions up to which a run takes `MAX_STEPS` whatever its simulations (above
# `WARM_DIM`), and draws its training noise levels around `LOW_DIM_P_MEAN`.
LOW_DIM = 3
# Parameter dimensions up to which a run starts at `LOW_DIM_LEARNING_RATE` and may take up to
# `MAX_STEPS` optimizer steps (above: at most `HIGH_DIM_MAX_STEPS`).
MID_DIM = 5
# Optimizer steps of a run with `LOW_DIM` parameters, and the ceiling up to `MID_DIM`.
MAX_STEPS = 20_000
# Up to `WARM_DIM` parameters, runs of at least `MANY_SIMULATIONS` simulations (training and
# validation) take `MANY_SIMULATIONS_MAX_STEPS` optimizer steps instead of `MAX_STEPS`.
MANY_SIMULATIONS = 100_000
MANY_SIMULATIONS_MAX_STEPS = 40_000
# Ceiling on the optimizer steps of a run with more than `MID_DIM` parameters.
HIGH_DIM_MAX_STEPS = 10_000
# Above `LOW_DIM` parameters, optimizer steps per simulation.
STEPS_PER_SIMULATION = 5
# Initial learning rates of Adam above and up to `MID_DIM` parameters.
LEARNING_RATE = 5e-4
LOW_DIM_LEARNING_RATE = 1e-3
# Mean of ln t of the training noise levels with up to `LOW_DIM` parameters.
LOW_DIM_P_MEAN = -2.0
# Sampling noise levels after T of 3 steps (standardized scale; the Karras grid's are 1.41 and
# 0.0925 for T = 10).
STEP_LEVELS = ((0.4, 0.05),)


def default_num_steps(theta_dim: int, num_simulations: int) -> int:
    """Optimizer steps of a training run when `max_num_epochs` is not given.

    Up to `WARM_DIM` (2) parameters, where a run on a new network starts with a warm start
    (`default_warm_start`), `WARM_STEPS_PER_SIMULATION` (10) steps per simulation, at most
    `MAX_STEPS` (20,000), and from `MANY_SIMULATIONS` (100,000) simulations on
    `MANY_SIMULATIONS_MAX_STEPS` (40,000), which use the extra data. With `LOW_DIM` (3)
    parameters `MAX_STEPS` whatever the number of simulations: without a warm start,
    low-dimensional posteriors keep improving for that long even with few simulations.
    Above, `STEPS_PER_SIMULATION` (5) steps per simulation, at most `MAX_STEPS` for up to
    `MID_DIM` (5) parameters and at most `HIGH_DIM_MAX_STEPS` (10,000) above, where longer
    runs start to memorize their training parameters. Evidence:
    `benchmarks/TUNING.md#training-budget`, `benchmarks/TUNING.md#two-cycles`,
    `benchmarks/TUNING.md#adopted-up-to-two-parameters` and
    `benchmarks/TUNING.md#a-budget-growing-with-simulations`.

    Arguments:
        theta_dim: Number of parameter dimensions.
        num_simulations: Number of simulations of the run (training and validation).

    Returns:
        The number of optimizer steps (at least 1).
    """
    if theta_dim <= WARM_DIM:
        ceiling = MANY_SIMULATIONS_MAX_STEPS if num_simulations >= MANY_SIMULATIONS else MAX_STEPS
        return max(1, min(ceiling, WARM_STEPS_PER_SIMULATION * num_simulations))
    if theta_dim <= LOW_DIM:
        return MAX_STEPS
    ceiling = MAX_STEPS if theta_dim <= MID_DIM else HIGH_DIM_MAX_STEPS
    return max(1, min(ceiling, STEPS_PER_SIMULATION * num_simulations))


def default_warm_start(theta_dim: int) -> float:
    """Fraction of a new run's optimizer steps in the warm start when `warm_start` is not given.

    `WARM_START` (0.5) for up to `WARM_DIM` (2) parameters, where half of the run as a
    denoiser and half as consistency training, each with its own learning-rate cycle, was
    more accurate than consistency training alone at the same or twice the steps; 0 (none)
    above, where it was not (e.g. on gaussian_linear). The trainer applies it to new networks
    only. Evidence: `benchmarks/TUNING.md#two-cycles`.

    Arguments:
        theta_dim: Number of parameter dimensions.

    Returns:
        The fraction in `[0, 1)`.
    """
    return WARM_START if theta_dim <= WARM_DIM else 0.0


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


def default_step_levels(theta_dim: int) -> tuple[tuple[float, ...], ...]:
    """Sampling noise levels after $T$ that `default_schedule` sets (`NoiseSchedule.step_levels`).

    `STEP_LEVELS`: 3 steps at $T$, 0.4 and 0.05 instead of the first points of the Karras grid
    ($T$, 1.41, 0.0925 for $T = 10$), at the same cost of one network call per step; other
    numbers of steps sample on the grid. The lower last level pulls in the few draws that 3
    grid steps leave off a thin posterior. The same levels for every dimension: they lowered
    C2ST on most tuning networks with 2, 5 and 10 parameters. Evidence:
    `benchmarks/TUNING.md#noise-levels-of-three-steps`.

    Arguments:
        theta_dim: Number of parameter dimensions.

    Returns:
        One tuple of levels per number of steps that does not sample on the grid.
    """
    del theta_dim  # one rule for every dimension; the argument keeps the defaults' signature
    return STEP_LEVELS


def default_schedule(theta_dim: int, **changes: Any) -> NoiseSchedule:
    """The noise schedule that `consistency_nn` builds when none is given.

    `NoiseSchedule`'s defaults (the authors' two-moons settings: $\\epsilon = 10^{-3}$,
    $T = 10$, $s_0 = 10$, $s_1 = 50$, $\\rho = 7$) with `default_p_mean(theta_dim)` and
    `default_step_levels(theta_dim)`; `changes` replace fields (e.g. `T=5.0`, or
    `step_levels=()` to sample every number of steps on the Karras grid). Default levels that
    `changes` of $\\epsilon$ or $T$ would leave outside $(\\epsilon, T)$ are dropped. Evidence:
    `benchmarks/TUNING.md#network-size-and-noise-schedule`.

    Arguments:
        theta_dim: Number of parameter dimensions.
        **changes: Fields of `NoiseSchedule` to set instead.

    Returns:
        The noise schedule.
    """
    eps, T = changes.get("eps", NoiseSchedule.eps), changes.get("T", NoiseSchedule.T)
    levels = tuple(
        each for each in default_step_levels(theta_dim) if eps < min(each) and max(each) < T
    )
    fields = {"p_mean": default_p_mean(theta_dim), "step_levels": levels}
    return NoiseSchedule(**{**fields, **changes})
