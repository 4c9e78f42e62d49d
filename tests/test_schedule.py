"""NoiseSchedule: one frozen set of noise constants, bound to the consistency maths."""

import dataclasses
import pickle

import pytest
import torch

from sbi_cmpe.consistency import (
    P_MEAN,
    P_STD,
    karras_grid,
    num_discretization_steps,
    sampling_times,
    scalings,
    timestep_probabilities,
)
from sbi_cmpe.schedule import NoiseSchedule


def test_defaults_are_the_authors_and_icts():
    s = NoiseSchedule()
    assert (s.eps, s.T, s.rho, s.s0, s.s1) == (1e-3, 10.0, 7.0, 10, 50)
    assert (s.p_mean, s.p_std) == (P_MEAN, P_STD)


def test_is_frozen_hashable_and_picklable():
    s = NoiseSchedule(T=5.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.T = 3.0
    assert pickle.loads(pickle.dumps(s)) == s
    assert {s: 1}[NoiseSchedule(T=5.0)] == 1


def test_methods_bind_the_constants_to_the_maths():
    s = NoiseSchedule(eps=2e-3, T=4.0, rho=5.0, s0=4, s1=16, p_mean=-0.5, p_std=1.5)
    assert torch.equal(s.grid(), karras_grid(17, 2e-3, 4.0, 5.0))
    assert torch.equal(s.grid(5), karras_grid(5, 2e-3, 4.0, 5.0))
    assert [s.num_points(k, 30) for k in range(30)] == [
        num_discretization_steps(k, 30, 4, 16) for k in range(30)
    ]
    grid = s.grid(9)
    assert torch.equal(s.timestep_probabilities(grid), timestep_probabilities(grid, -0.5, 1.5))
    assert torch.equal(s.sampling_times(3), sampling_times(3, 2e-3, 4.0, 5.0))
    t = torch.tensor([2e-3, 1.0])
    assert all(torch.equal(a, b) for a, b in zip(s.scalings(t), scalings(t, 2e-3)))


@pytest.mark.parametrize(
    "fields, error, message",
    [
        (dict(eps=0.0), ValueError, "0 < eps < T"),
        (dict(eps=1.0, T=1.0), ValueError, "0 < eps < T"),
        (dict(rho=0.0), ValueError, "rho must be positive"),
        (dict(s0=20, s1=10), ValueError, "1 <= s0 <= s1"),
        (dict(s0=0), ValueError, "1 <= s0 <= s1"),
        (dict(s1=50.0), TypeError, "s1 must be an int"),
        (dict(s0=True), TypeError, "s0 must be an int"),
        (dict(p_std=0.0), ValueError, "p_std must be positive"),
        (dict(step_levels=((0.05, 0.4),)), ValueError, "must decrease strictly"),
        (dict(step_levels=((20.0, 0.05),)), ValueError, "must decrease strictly"),
        (dict(step_levels=((0.4, 1e-4),)), ValueError, "must decrease strictly"),
        (dict(step_levels=((),)), ValueError, "must decrease strictly"),
        (dict(step_levels=((0.4, float("nan")),)), ValueError, "must decrease strictly"),
        (dict(step_levels=(0.4, 0.05)), TypeError, "tuple of tuples"),
        (dict(step_levels=((0.4, 0.05), (0.3, 0.1))), ValueError, "same number of steps"),
    ],
)
def test_bad_constants_are_refused_by_name(fields, error, message):
    with pytest.raises(error, match=message):
        NoiseSchedule(**fields)


def test_step_levels_replace_the_grid_for_their_number_of_steps():
    s = NoiseSchedule(step_levels=[(0.4, 0.05)])  # lists become tuples: hashable
    assert s.step_levels == ((0.4, 0.05),) and hash(s)
    assert torch.allclose(s.sampling_times(3), torch.tensor([10.0, 0.4, 0.05]))
    for k in (1, 2, 5, 10):  # other numbers of steps keep the Karras grid
        assert torch.equal(s.sampling_times(k), sampling_times(k, 1e-3, 10.0))
    assert not torch.equal(NoiseSchedule().sampling_times(3), s.sampling_times(3))


def test_a_schedule_pickled_before_step_levels_samples_on_the_grid():
    s = NoiseSchedule()
    state = pickle.dumps(s)
    old = pickle.loads(state)
    del old.__dict__["step_levels"]  # as an object pickled by 0.2 has no such field
    assert torch.equal(old.sampling_times(3), sampling_times(3, 1e-3, 10.0))
