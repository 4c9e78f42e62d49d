"""Tuned defaults: budget, learning rate and noise schedule by parameter dimension."""

import pytest
import torch

from sbi_cmpe.defaults import (
    HIGH_DIM_MAX_STEPS,
    MANY_SIMULATIONS,
    MANY_SIMULATIONS_MAX_STEPS,
    MAX_STEPS,
    STEP_LEVELS,
    default_learning_rate,
    default_num_steps,
    default_p_mean,
    default_schedule,
    default_step_levels,
    default_warm_start,
)
from sbi_cmpe.schedule import NoiseSchedule


def test_default_budget_depends_on_the_parameter_dimension():
    assert default_num_steps(3, 10) == default_num_steps(3, 10**6) == MAX_STEPS == 20_000
    # Up to two parameters (with a warm start): 10 steps per simulation, up to MAX_STEPS.
    assert default_num_steps(1, 10) == 100 and default_num_steps(2, 1000) == 10_000
    assert default_num_steps(2, 2000) == default_num_steps(1, 99_999) == MAX_STEPS
    # From MANY_SIMULATIONS simulations on, up to two parameters only: MANY_SIMULATIONS_MAX_STEPS.
    assert default_num_steps(2, MANY_SIMULATIONS) == default_num_steps(1, 10**6) == 40_000
    assert MANY_SIMULATIONS == 100_000 and MANY_SIMULATIONS_MAX_STEPS == 40_000
    assert default_num_steps(3, MANY_SIMULATIONS) == default_num_steps(5, 10**6) == MAX_STEPS
    assert default_num_steps(6, 10**4) == default_num_steps(10, 2000) == HIGH_DIM_MAX_STEPS
    assert HIGH_DIM_MAX_STEPS == 10_000
    # Four and five parameters: 5 steps per simulation, up to the low-dimensional budget.
    assert default_num_steps(4, 10**4) == default_num_steps(5, 10**6) == MAX_STEPS
    assert default_num_steps(4, 1000) == default_num_steps(5, 1000) == 5000
    assert default_num_steps(6, 1000) == 5000
    assert default_num_steps(5, 3000) == 15_000


@pytest.mark.parametrize("num_sims, steps", [(1000, 5000), (1500, 7500), (10_000, 10_000), (0, 1)])
def test_default_budget_of_higher_dimensions_follows_the_simulations(num_sims, steps):
    assert default_num_steps(10, num_sims) == steps
    assert default_num_steps(3, num_sims) == 20_000


@pytest.mark.parametrize("theta_dim, expected", [(1, 0.5), (2, 0.5), (3, 0.0), (10, 0.0)])
def test_default_warm_start_up_to_two_parameters(theta_dim, expected):
    assert default_warm_start(theta_dim) == expected


@pytest.mark.parametrize("theta_dim, expected", [(1, 1e-3), (5, 1e-3), (6, 5e-4), (100, 5e-4)])
def test_default_learning_rate(theta_dim, expected):
    assert default_learning_rate(theta_dim) == expected


@pytest.mark.parametrize("theta_dim, expected", [(1, -2.0), (3, -2.0), (4, -1.1), (64, -1.1)])
def test_default_schedule_centres_low_dimensions_lower(theta_dim, expected):
    assert default_p_mean(theta_dim) == expected
    schedule = default_schedule(theta_dim)
    levels = default_step_levels(theta_dim)
    assert schedule == NoiseSchedule(p_mean=expected, step_levels=levels)
    tuned = NoiseSchedule(T=5.0, p_mean=expected, step_levels=levels)
    assert default_schedule(theta_dim, T=5.0) == tuned
    assert default_schedule(theta_dim, p_mean=0.5).p_mean == 0.5
    with pytest.raises(TypeError):
        default_schedule(theta_dim, sigma=1.0)


@pytest.mark.parametrize("theta_dim", [1, 2, 5, 10, 64])
def test_default_schedule_samples_three_steps_at_the_tuned_levels(theta_dim):
    schedule = default_schedule(theta_dim)
    assert schedule.step_levels == default_step_levels(theta_dim) == STEP_LEVELS
    assert schedule.sampling_times(3).tolist() == pytest.approx([10.0, 0.4, 0.05])
    grid = NoiseSchedule()  # every other number of steps samples on the Karras grid
    for k in (1, 2, 5, 10):
        assert torch.equal(schedule.sampling_times(k), grid.sampling_times(k))
    assert not torch.equal(schedule.sampling_times(3), grid.sampling_times(3))


def test_default_step_levels_give_way_to_the_caller():
    assert default_schedule(2, step_levels=()).step_levels == ()  # the grid, as in 0.2
    assert default_schedule(2, step_levels=((1.0,),)).step_levels == ((1.0,),)
    # Levels that the caller's T or eps leave outside (eps, T) are dropped, not an error.
    assert default_schedule(2, T=0.3).step_levels == ()
    assert default_schedule(2, eps=0.1).step_levels == ()
    assert default_schedule(2, T=0.5).step_levels == STEP_LEVELS
    with pytest.raises(ValueError, match="eps < T"):  # the caller's own mistake still raises
        default_schedule(2, eps=1.0, T=0.5)
