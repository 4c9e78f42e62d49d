"""Shapes, boundary condition and gradients of the consistency estimator."""

import pytest
import torch
from torch import nn

from sbi_cmpe import ConsistencyEstimator, NoiseSchedule, consistency_nn
from sbi_cmpe.defaults import STEP_LEVELS


@pytest.mark.parametrize("model", ["mlp", "ada_mlp"])
def test_boundary_condition_is_exact(model):
    est = consistency_nn(model=model, hidden_features=16, num_layers=1, time_embedding_dim=8)(
        torch.randn(50, 3), torch.randn(50, 2)
    )
    # Make the network output non-zero so that the test can fail.
    for p in est.net.parameters():
        nn.init.normal_(p)
    theta, emb = torch.randn(10, 3), est._embed(torch.randn(10, 2))
    t = torch.full((10,), est.schedule.eps)
    assert torch.equal(est.consistency_function(theta, t, emb), theta)
    assert not torch.allclose(est.consistency_function(theta, t * 100, emb), theta)


@pytest.mark.parametrize("density", [False, True])
def test_warm_start_loss_calls_the_network_once_and_trains_it(density):
    """The warm start's teacher is theta + eps z, not a second network call."""
    est = consistency_nn(hidden_features=16, num_layers=1, time_embedding_dim=8, density=density)(
        torch.randn(50, 3), torch.randn(50, 2)
    )
    calls = []
    est.net.register_forward_hook(lambda *args: calls.append(torch.is_grad_enabled()))
    theta, x = torch.randn(9, 3), torch.randn(9, 2)
    loss = est.loss(theta, x, num_points=11, warm_start=True)
    assert loss.shape == (9,) and torch.isfinite(loss).all() and calls == [True]
    loss.mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in est.net.parameters() if p.grad is not None)
    calls.clear()
    est.loss(theta, x, num_points=11)
    assert calls == [True, False]  # student, then the teacher without gradients

    # The warm start draws its noise levels from the final grid, whatever the curriculum.
    def seeded():
        return torch.Generator().manual_seed(1)

    warm = [
        est.loss(theta, x, num_points=n, warm_start=True, generator=seeded()) for n in (11, None)
    ]
    torch.testing.assert_close(*warm)


@pytest.mark.parametrize("theta_dim, x_shape", [(1, (1,)), (3, (3,)), (2, (4, 5))])
def test_loss_and_sample_shapes(theta_dim, x_shape):
    embedding = nn.Flatten() if len(x_shape) > 1 else None
    build = consistency_nn(
        hidden_features=16,
        num_layers=1,
        time_embedding_dim=8,
        embedding_net=embedding,
        z_score_x="none" if embedding else "independent",
    )
    est = build(torch.randn(40, theta_dim), torch.randn(40, *x_shape))
    assert isinstance(est, ConsistencyEstimator)
    loss = est.loss(torch.randn(7, theta_dim), torch.randn(7, *x_shape), num_points=11)
    assert loss.shape == (7,)
    loss.mean().backward()
    grads = [p.grad for p in est.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    for k in (1, 3):
        s = est.sample((5, 2), torch.randn(4, *x_shape), num_steps=k)
        assert s.shape == (5, 2, 4, theta_dim) and torch.isfinite(s).all()


def test_condition_shape_is_checked():
    est = consistency_nn(hidden_features=16, num_layers=1)(torch.randn(40, 2), torch.randn(40, 3))
    with pytest.raises(ValueError, match="Shape of condition"):
        est.loss(torch.randn(5, 2), torch.randn(5, 4))


def test_theta_standardization_round_trip():
    theta = 100 + 5 * torch.randn(500, 2)
    est = consistency_nn(hidden_features=16, num_layers=1)(theta, torch.randn(500, 1))
    assert torch.allclose(est.theta_mean, theta.mean(0))
    # With F = 0 (zero-initialised output layer) one step returns c_skip(T) * T z,
    # mapped back to the original units: centred on the data mean.
    s = est.sample((2000,), torch.zeros(1, 1), num_steps=1)
    assert (s.mean((0, 1)) - theta.mean(0)).abs().max() < 2.0


def test_builder_passes_the_timestep_distribution():
    theta, x = torch.randn(40, 2), torch.randn(40, 3)
    losses = []
    for p_mean, p_std in [(-1.1, 2.0), (1.5, 0.5)]:
        torch.manual_seed(0)
        schedule = NoiseSchedule(p_mean=p_mean, p_std=p_std)
        est = consistency_nn(hidden_features=16, num_layers=1, schedule=schedule)(theta, x)
        assert est.schedule is schedule
        generator = torch.Generator().manual_seed(1)
        losses.append(est.loss(theta, x, generator=generator))
    # Same weights and noise: only the drawn noise levels differ.
    assert not torch.allclose(losses[0], losses[1])


@pytest.mark.parametrize(
    "theta_shape, expected", [((2,), -2.0), ((3,), -2.0), ((4,), -1.1), ((2, 2), -1.1)]
)
def test_default_timestep_mean_depends_on_the_parameter_dimension(theta_shape, expected):
    build = consistency_nn(hidden_features=16, num_layers=1)
    est = build(torch.randn(40, *theta_shape), torch.randn(40, 7))
    assert est.schedule == NoiseSchedule(p_mean=expected, step_levels=STEP_LEVELS)
    # A schedule passed is used as it is: its 3 steps on the Karras grid.
    est = consistency_nn(hidden_features=16, num_layers=1, schedule=NoiseSchedule(p_mean=0.5))(
        torch.randn(40, *theta_shape), torch.randn(40, 7)
    )
    assert est.schedule.p_mean == 0.5 and est.schedule.step_levels == ()


def test_loose_schedule_keywords_are_refused_with_the_fix():
    with pytest.raises(TypeError, match=r"schedule=NoiseSchedule\(...\) instead of T, s1"):
        consistency_nn(T=5.0, s1=100)
    with pytest.raises(TypeError, match="schedule must be a NoiseSchedule"):
        consistency_nn(schedule={"T": 5.0})
    with pytest.raises(TypeError, match="schedule must be a NoiseSchedule"):
        ConsistencyEstimator(nn.Linear(1, 1), torch.Size([1]), torch.Size([1]), schedule=5.0)
