"""The benchmark's cache: file names are written and read back by one module."""

import pytest
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
from sbi_cmpe.benchmark.tasks import Task, load_task


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


def test_gaussian_mixture_draws_a_component_per_simulation():
    """One batch holds both noise scales (1 and 0.1) in about equal shares, as sbibm's
    reference posteriors assume; sbibm 1.0.6's own simulator gives the batch one scale."""
    pytest.importorskip("sbibm")
    task = load_task("gaussian_mixture")
    torch.manual_seed(0)
    theta = torch.zeros(4_000, 2)
    x = task.simulator(theta)  # (4000, 2), zero mean
    radius = x.norm(dim=1)
    wide = (radius > 0.5).float().mean().item()  # P(|z| > 0.5) is 0.88 at scale 1, 0 at 0.1
    assert abs(wide - 0.5 * 0.8825) < 0.03
    assert x.shape == theta.shape
    theta = torch.full((2_000, 2), 3.0)
    assert abs(task.simulator(theta).mean().item() - 3.0) < 0.05


def test_box_gaussian_reference_is_the_truncated_normal():
    """Each dimension of the bounded-prior check's reference has the mean and standard
    deviation of its normal truncated to the box (scipy's closed forms)."""
    from scipy.stats import truncnorm

    task = load_task("box_gaussian")
    x_o = task.observation(3)[0]  # (10,)
    reference = task.reference_samples(3, 20_000)  # (20000, 10)
    assert reference.shape == (20_000, 10) and bool(task.prior.support.check(reference).all())
    scales = torch.logspace(-1.30103, 0.0, 10)
    for d in range(10):
        loc, scale = x_o[d].item(), scales[d].item()
        a, b = (-2.0 - loc) / scale, (2.0 - loc) / scale
        mean, sd = truncnorm.stats(a, b, loc=loc, scale=scale, moments="mv")
        assert abs(reference[:, d].mean().item() - mean) < 4 * sd**0.5 / 20_000**0.5 + 1e-3
        assert abs(reference[:, d].std().item() / sd**0.5 - 1) < 0.03
    assert not torch.equal(task.observation(1), task.observation(2))
