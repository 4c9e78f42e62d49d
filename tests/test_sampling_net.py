"""The sampling-time evaluation of the network equals the network's own forward pass."""

import copy
import dataclasses
import math

import pytest
import torch
from sbi.neural_nets.net_builders.vector_field_nets import VectorFieldMLP
from torch import nn

from sbi_cmpe import NoiseSchedule, consistency_nn
from sbi_cmpe.sampling_net import _SharedConditionMLP, shared_condition_net


def _randomized(model: str, **kwargs):
    est = consistency_nn(model=model, hidden_features=32, num_layers=2, **kwargs)(
        torch.randn(50, 3), torch.randn(50, 4)
    )
    for p in est.net.parameters():  # non-zero output layer, so that the test can fail
        nn.init.normal_(p, std=0.1)
    return est


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize(
    "net_kwargs",
    [
        {},
        {"layer_norm": False, "skip_connections": False},
        {"activation": nn.ReLU},
        {"activation": nn.SiLU},
    ],
)
def test_shared_condition_mlp_matches_forward(batch, net_kwargs):
    est = _randomized("mlp", **net_kwargs)
    embedded = est._embed(torch.randn(batch, 4))  # (B, C)
    network = shared_condition_net(est.net, embedded)
    assert isinstance(network, _SharedConditionMLP)
    n, tau = 7, 0.37
    theta_t = torch.randn(n * batch, 3)
    expected = est.net(theta_t, embedded.repeat(n, 1), torch.full((n * batch,), math.log(tau)))
    with torch.no_grad():
        assert torch.allclose(network(theta_t, math.log(tau)), expected, atol=1e-5)


def test_shared_condition_mlp_with_random_fourier_time_embedding():
    net = VectorFieldMLP(3, 4, 16, hidden_features=32, time_emb_type="random_fourier")
    nn.init.normal_(net.output_layer.weight)
    embedded, theta_t = torch.randn(2, 4), torch.randn(10, 3)
    expected = net(theta_t, embedded.repeat(5, 1), torch.full((10,), math.log(0.5)))
    with torch.no_grad():
        actual = shared_condition_net(net, embedded)(theta_t, math.log(0.5))
    assert torch.allclose(actual, expected, atol=1e-5)


def test_other_networks_use_their_own_forward():
    est = _randomized("ada_mlp")
    embedded = est._embed(torch.randn(2, 4))
    network = shared_condition_net(est.net, embedded)
    assert not isinstance(network, _SharedConditionMLP)
    theta_t = torch.randn(10, 3)
    expected = est.net(theta_t, embedded.repeat(5, 1), torch.full((10,), math.log(2.0)))
    assert torch.equal(network(theta_t, math.log(2.0)), expected)


@pytest.mark.parametrize("model", ["mlp", "ada_mlp"])
def test_sampling_equals_the_consistency_function_step_by_step(model):
    """`sample` with fixed noise equals Algorithm 1 written with `consistency_function`."""
    est = _randomized(model)
    x = torch.randn(2, 4)
    draws = est.sample((5,), x, num_steps=3, generator=torch.Generator().manual_seed(1))

    generator = torch.Generator().manual_seed(1)
    embedded = est._embed(x).repeat(5, 1)  # (10, C), draw-major
    theta = torch.zeros(10, 3)
    with torch.no_grad():
        for i, tau in enumerate(est.schedule.sampling_times(3).tolist()):
            noise = torch.randn(10, 3, generator=generator)
            scale = tau if i == 0 else math.sqrt(tau**2 - est.schedule.eps**2)
            theta_t = (0 if i == 0 else theta) + scale * noise
            theta = est.consistency_function(theta_t, torch.full((10,), tau), embedded)
    expected = (theta * est.theta_std + est.theta_mean).reshape(5, 2, 3)
    assert torch.allclose(draws, expected, rtol=1e-4, atol=1e-5)


def test_step_levels_of_the_schedule_reach_the_sampler():
    est = _randomized("mlp", schedule=NoiseSchedule(step_levels=((0.4, 0.05),)))
    grid = copy.deepcopy(est)
    grid.schedule = dataclasses.replace(est.schedule, step_levels=())
    x = torch.randn(2, 4)

    def draws(estimator, steps):
        generator = torch.Generator().manual_seed(1)
        return estimator.sample((5,), x, num_steps=steps, generator=generator)

    assert not torch.allclose(draws(est, 3), draws(grid, 3))  # 10, 0.4, 0.05 vs the grid's
    assert torch.equal(draws(est, 2), draws(grid, 2))  # no levels for 2 steps: the grid
