"""The benchmark's cache: file names are written and read back by one module."""

import torch
from sbi.utils import BoxUniform

from sbi_cmpe.benchmark.cache import (
    cached_posteriors,
    cached_simulations,
    method_label,
    posterior_path,
    simulations,
    simulations_path,
)
from sbi_cmpe.benchmark.tasks import Task


def test_names_round_trip(tmp_path):
    written = [
        simulations_path(tmp_path, "two_moons", 1000, 0),
        simulations_path(tmp_path, "gaussian_linear_uniform", 10000, 12),
        posterior_path(tmp_path, "two_moons", 1000, "cmpe", 0),
        posterior_path(tmp_path, "bernoulli_glm", 10000, "cmpe:steps=5000,num_steps=2", 3),
        posterior_path(tmp_path, "slcp_distractors", 100, "npe_nsf", 11),
    ]
    for path in written:
        path.touch()
    (tmp_path / "notes.pt").touch()  # not a cache file: ignored
    assert [(f.task, f.budget, f.seed) for f in cached_simulations(tmp_path)] == [
        ("gaussian_linear_uniform", 10000, 12),
        ("two_moons", 1000, 0),
    ]
    assert [f.task for f in cached_simulations(tmp_path, seed=0)] == ["two_moons"]
    assert [(f.task, f.budget, f.method, f.seed) for f in cached_posteriors(tmp_path)] == [
        ("bernoulli_glm", 10000, "cmpe_steps_5000_num_steps_2", 3),
        ("slcp_distractors", 100, "npe_nsf", 11),
        ("two_moons", 1000, "cmpe", 0),
    ]
    assert method_label("cmpe:steps=5000,num_steps=2") == "cmpe_steps_5000_num_steps_2"


def test_simulations_are_made_once_then_loaded(tmp_path):
    prior = BoxUniform(-torch.ones(2), torch.ones(2))
    calls = []

    def simulator(theta):
        calls.append(len(theta))
        return theta + 0.1 * torch.randn_like(theta)

    task = Task("toy", prior, simulator, lambda i: None, lambda i, n: None)
    theta, x = simulations(task, 50, 4, tmp_path / "cache")
    again_theta, again_x = simulations(task, 50, 4, tmp_path / "cache")
    assert calls == [50] and theta.shape == (50, 2) and x.shape == (50, 2)
    assert torch.equal(theta, again_theta) and torch.equal(x, again_x)
    assert [f.path for f in cached_simulations(tmp_path / "cache")] == [
        simulations_path(tmp_path / "cache", "toy", 50, 4)
    ]
