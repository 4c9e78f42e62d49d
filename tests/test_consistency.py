"""Unit tests of the consistency maths: scalings, grids, curriculum, loss."""

import math

import pytest
import torch

from sbi_cmpe.consistency import (
    consistency_loss,
    karras_grid,
    num_discretization_steps,
    pseudo_huber,
    sampling_times,
    scalings,
    timestep_probabilities,
    training_pairs,
)


def test_scalings_boundary():
    c_skip, c_out = scalings(torch.tensor([1e-3]), eps=1e-3)
    assert c_skip.item() == 1.0 and c_out.item() == 0.0
    c_skip, c_out = scalings(torch.tensor([10.0]), eps=1e-3)
    assert c_skip.item() < 0.02 and 0.9 < c_out.item() < 1.0


@pytest.mark.parametrize("n", [2, 3, 11, 51, 1281])
def test_karras_grid_monotone_with_exact_ends(n):
    t = karras_grid(n, eps=1e-3, T=10.0)
    assert t.shape == (n,)
    assert (t[1:] > t[:-1]).all()
    assert t[0].item() == pytest.approx(1e-3) and t[-1].item() == pytest.approx(10.0)


def test_karras_grid_rejects_bad_arguments():
    with pytest.raises(ValueError, match="at least 2"):
        karras_grid(1, 1e-3, 10.0)
    with pytest.raises(ValueError, match="0 < eps < T"):
        karras_grid(5, 1.0, 0.5)


@pytest.mark.parametrize("total", [1, 2, 3, 4, 7, 100, 1001, 25_000])
@pytest.mark.parametrize("s0, s1", [(10, 50), (10, 150), (10, 1280), (20, 20)])
def test_curriculum_reaches_s1_at_last_step_and_never_decreases(total, s0, s1):
    ns = [num_discretization_steps(k, total, s0, s1) for k in range(total)]
    assert ns[-1] == s1 + 1
    assert all(a <= b for a, b in zip(ns, ns[1:]))
    if total >= math.ceil(math.log2(s1 / s0)) + 1:
        assert ns[0] == s0 + 1


def test_curriculum_stages_are_doublings():
    ns = sorted({num_discretization_steps(k, 400, 10, 50) for k in range(400)})
    assert ns == [11, 21, 41, 51]


def test_timestep_probabilities():
    grid = karras_grid(51, 1e-3, 10.0)
    p = timestep_probabilities(grid)
    assert p.shape == (50,) and (p > 0).all()
    assert p.sum().item() == pytest.approx(1.0, abs=1e-5)
    # The lognormal centres near exp(-1.1) ~ 0.33: the most likely interval is there.
    n = p.argmax()
    assert grid[n] < 1.5 and grid[n + 1] > 0.05


def test_pseudo_huber_is_vector_norm_based():
    a, b = torch.zeros(4, 3), torch.zeros(4, 3)
    b[0] = torch.tensor([3.0, 4.0, 0.0])
    d = pseudo_huber(a, b, c=1.0)
    assert d.shape == (4,)
    assert d[0].item() == pytest.approx(math.sqrt(26.0) - 1.0)
    assert (d[1:] == 0).all()


def test_consistency_loss_shape_gradient_and_stopgrad():
    net = torch.nn.Linear(3, 2)

    def f(theta_t, t, x):
        c_skip, c_out = scalings(t, 1e-3)
        return c_skip[:, None] * theta_t + c_out[:, None] * net(
            torch.cat([theta_t, t[:, None]], -1)
        )

    theta, x = torch.randn(16, 2), torch.randn(16, 1)
    loss = consistency_loss(f, theta, x, karras_grid(11, 1e-3, 10.0))
    assert loss.shape == (16,) and torch.isfinite(loss).all() and (loss >= 0).all()
    loss.mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())


def test_consistency_loss_fixed_generator_is_deterministic():
    def f(theta_t, t, x):
        return theta_t / (1 + t[:, None])

    theta = torch.randn(8, 2)
    grid = karras_grid(51, 1e-3, 10.0)
    a = consistency_loss(f, theta, None, grid, generator=torch.Generator().manual_seed(0))
    b = consistency_loss(f, theta, None, grid, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)


def test_warm_start_loss_is_the_consistency_loss_with_its_teacher_at_eps():
    def f(theta_t, t, x):
        return theta_t / (1 + t[:, None])

    theta, grid = torch.randn(64, 2), karras_grid(51, 1e-3, 10.0)
    loss = consistency_loss(
        f, theta, None, grid, generator=torch.Generator().manual_seed(3), warm_start=True
    )
    _, t, z = training_pairs(grid, 64, 2, generator=torch.Generator().manual_seed(3))
    teacher = theta + 1e-3 * z  # f(theta + eps z, eps) by the boundary condition
    expected = pseudo_huber(f(theta + t[:, None] * z, t, None), teacher, 0.00054 * math.sqrt(2))
    torch.testing.assert_close(loss, expected / (t - 1e-3))


def test_warm_start_loss_is_smallest_at_the_denoiser():
    """For theta ~ N(0, I) the denoiser E[theta | theta_t] = theta_t / (1 + t^2) (also the
    median of the symmetric p(theta | theta_t)) beats shrinking a little more or less."""
    theta, grid = torch.randn(200_000, 2), karras_grid(51, 1e-3, 10.0)

    def loss(scale):
        def f(theta_t, t, x):
            return theta_t / (1 + scale * t[:, None] ** 2)

        g = torch.Generator().manual_seed(0)
        return consistency_loss(f, theta, None, grid, generator=g, warm_start=True).mean().item()

    assert loss(1.0) < min(loss(0.8), loss(1.25))


@pytest.mark.parametrize("k", [1, 2, 5, 20])
def test_sampling_times(k):
    t = sampling_times(k, 1e-3, 10.0)
    assert t.shape == (k,) and t[0].item() == pytest.approx(10.0)
    assert (t[1:] < t[:-1]).all() and (t > 1e-3).all()


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_sampling_times_rejects_bad_num_steps(bad):
    with pytest.raises(ValueError, match="num_steps must be an int >= 1"):
        sampling_times(bad, 1e-3, 10.0)
