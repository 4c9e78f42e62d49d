"""The choice of sampling steps after training (`sbi_cmpe.steps`)."""

import math
import pickle
from types import SimpleNamespace

import pytest
import torch

from sbi_cmpe import consistency_nn
from sbi_cmpe.steps import (
    BANDWIDTH,
    STEP_CHOICE_DRAWS,
    STEP_GRID,
    best_steps,
    choose_num_steps,
    kernel_scores,
)
from tests.conftest import Recorder, make_inference


class _Sampler(torch.nn.Module):
    """Draws from N(x, 0.1^2) in 3 and 5 steps, blurred in 1 and 2 steps (by noise of sd
    0.15 and 0.1), shifted by 0.05 in 10: accuracy against steps, in miniature."""

    def __init__(self):
        super().__init__()
        self.register_buffer("theta_std", torch.ones(1))

    def sample(self, shape, condition, num_steps=None, generator=None):
        z = torch.randn((*shape, len(condition), 1), generator=generator)
        blur = torch.randn((*shape, len(condition), 1), generator=generator)
        y = condition + 0.1 * z
        if num_steps in (1, 2):
            y = y + (0.15 if num_steps == 1 else 0.1) * blur
        if num_steps == 10:
            y = y + 0.05
        return y


def test_kernel_score_finds_the_bottom_of_the_curve():
    x = torch.randn(400, 1)
    theta = x + 0.1 * torch.randn(400, 1)
    scores = kernel_scores(_Sampler(), theta, x, (1, 2, 3, 10), draws_per_simulation=64)
    assert scores.shape == (4, 400)
    chosen, se = best_steps((1, 2, 3, 10), scores)
    assert chosen == 3 and se[2] == 0
    mean = scores.mean(1)
    # Blur and bias are each resolved by more than three standard errors.
    assert torch.all((mean - mean[2])[[0, 1, 3]] > 3 * se[[0, 1, 3]])
    # From a blurry default (2 steps), the clear evidence moves the choice to 3.
    assert best_steps((1, 2, 3, 10), scores, default=2)[0] == 3


def test_kernel_bandwidth_scales_the_median_distance():
    x = torch.randn(200, 1)
    theta = x + 0.1 * torch.randn(200, 1)
    default = kernel_scores(_Sampler(), theta, x, (1, 3), draws_per_simulation=32)
    assert torch.equal(
        default, kernel_scores(_Sampler(), theta, x, (1, 3), 32, bandwidth=BANDWIDTH)
    )
    wide = kernel_scores(_Sampler(), theta, x, (1, 3), 32, bandwidth=20.0)
    # A kernel far wider than the posterior barely sees the blur of one step.
    assert abs((wide[0] - wide[1]).mean()) < 0.05 * (default[0] - default[1]).mean()
    with pytest.raises(ValueError, match="bandwidth must be positive"):
        kernel_scores(_Sampler(), theta, x, (1, 3), 32, bandwidth=0.0)


class _TwoScales(torch.nn.Module):
    """Draws from N(x, diag(1, 0.01^2)); one step blurs only the narrow dimension (by noise
    of sd 0.02). `scale` stretches the narrow dimension by a constant."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.register_buffer("theta_std", torch.ones(2))
        self.scale = scale
        self.schedule = SimpleNamespace(sampling_times=lambda k: None)  # any k is valid

    def sample(self, shape, condition, num_steps=None, generator=None):
        z = torch.randn((*shape, len(condition), 2), generator=generator)
        blur = torch.randn((*shape, len(condition)), generator=generator)
        y = condition + z * torch.tensor([1.0, 0.01])
        if num_steps == 1:
            y[..., 1] += 0.02 * blur
        return y * torch.tensor([1.0, self.scale])


def test_per_dimension_score_sees_the_narrow_dimension_and_ignores_its_units():
    torch.manual_seed(0)
    x = torch.randn(300, 2)
    theta = x + torch.randn(300, 2) * torch.tensor([1.0, 0.01])
    joint = kernel_scores(_TwoScales(), theta, x, (1, 3), 64, per_dimension=False)
    each = kernel_scores(_TwoScales(), theta, x, (1, 3), 64)  # per dimension, the default
    # The shared scale is set by the wide dimension: the narrow one's blur is not resolved.
    assert best_steps((1, 3), joint)[0] == 3
    gain, se = (joint[0] - joint[1]).mean(), (joint[0] - joint[1]).std() / 300**0.5
    assert abs(gain) < 3 * se
    # Weighed by their own spread, it is: one step scores clearly worse.
    gain, se = (each[0] - each[1]).mean(), (each[0] - each[1]).std() / 300**0.5
    assert gain > 5 * se
    # Stretching a dimension (draws and truth alike) leaves the per-dimension score unchanged.
    stretched = theta * torch.tensor([1.0, 100.0])
    again = kernel_scores(_TwoScales(100.0), stretched, x, (1, 3), 64)
    assert torch.allclose(again, each, atol=1e-5)
    # In the shared scale, the stretched dimension now sets the kernel and the blur shows.
    stretched_joint = kernel_scores(
        _TwoScales(100.0), stretched, x, (1, 3), 64, per_dimension=False
    )
    assert not torch.allclose(stretched_joint, joint, atol=5e-2)


def test_per_dimension_score_keeps_its_digits_far_from_zero():
    # The narrow dimension 50 from zero, 5,000 of its widths: distances taken there, not
    # after centring, would lose the one-step blur to rounding.
    torch.manual_seed(0)
    x = torch.randn(300, 2) + torch.tensor([0.0, 50.0])
    theta = x + torch.randn(300, 2) * torch.tensor([1.0, 0.01])
    scores = kernel_scores(_TwoScales(), theta, x, (1, 3), 64)
    gain, se = (scores[0] - scores[1]).mean(), (scores[0] - scores[1]).std() / 300**0.5
    assert gain > 5 * se
    # choose_num_steps passes the choice of scale on (it draws this many per simulation).
    m = math.ceil(STEP_CHOICE_DRAWS / 300)
    for per_dimension in (True, False):
        expected = kernel_scores(_TwoScales(), theta, x, (1, 3), m, per_dimension=per_dimension)
        choice = choose_num_steps(_TwoScales(), theta, x, (1, 3), per_dimension=per_dimension)
        assert choice.scores == pytest.approx(expected.mean(1).tolist(), abs=1e-6)
    assert choice.num_steps == 3


def test_rule_keeps_the_default_without_clear_evidence():
    grid = (1, 3, 5)
    # 5 steps beat the default by 0.05 on average, and by exactly 0.05 on each simulation.
    clear = torch.tensor([[0.9, 0.8, 0.7, 0.6], [0.5, 0.4, 0.3, 0.2], [0.45, 0.35, 0.25, 0.15]])
    chosen, se = best_steps(grid, clear)
    assert chosen == 5 and se[1] == 0 and se[2] < 1e-6
    # The same mean gain, spread unevenly over the simulations: within two standard errors.
    noisy = clear.clone()
    noisy[2] = torch.tensor([0.20, 0.50, 0.35, 0.15])
    chosen, se = best_steps(grid, noisy)
    assert chosen == 3 and se[2] > 0.05 / 2
    # One simulation gives no standard error: the default stays.
    assert best_steps(grid, clear[:, :1])[0] == 3
    with pytest.raises(ValueError, match="must be in the grid"):
        best_steps((1, 2), clear[:2])


@pytest.fixture
def auto_builder():
    """A small network whose posterior chooses its steps after training (the default)."""
    return consistency_nn(hidden_features=32, num_layers=1, time_embedding_dim=8)


@pytest.fixture
def trained(auto_builder):
    inference, theta, x = make_inference(auto_builder, n=200)
    inference.append_simulations(theta, x).train(max_num_epochs=3)
    return inference


def test_choice_is_the_rule_applied_to_kernel_scores(trained):
    net = trained._neural_net
    theta, x = trained._validation_data()
    choice = choose_num_steps(net, theta, x, grid=(1, 2, 2), min_draws=320)  # 3 added
    assert choice.grid == (1, 2, 3) and choice.num_simulations == len(theta)
    m = 320 // len(theta)  # at least 16 draws per simulation
    scores = kernel_scores(net, theta, x, (1, 2, 3), draws_per_simulation=max(16, m))
    assert choice.num_steps == best_steps((1, 2, 3), scores)[0]
    assert choice.scores == tuple(round(float(s), 6) for s in scores.mean(1))
    again = choose_num_steps(net, theta, x, grid=(1, 2, 3), min_draws=320)
    assert again.num_steps == choice.num_steps and again.scores == choice.scores
    assert choice.seconds >= 0


def test_choice_errors(trained):
    net = trained._neural_net
    theta, x = trained._validation_data()
    with pytest.raises(ValueError, match="at least one held-out simulation"):
        choose_num_steps(net, theta[:0], x[:0])
    with pytest.raises(ValueError):
        choose_num_steps(net, theta, x, grid=(0, 3))


def test_training_chooses_the_default_steps_and_logs_them(auto_builder):
    tracker = Recorder()
    inference, theta, x = make_inference(auto_builder, n=300, dim=3, tracker=tracker)
    inference.append_simulations(theta, x).train(max_num_epochs=2)
    net = inference._neural_net
    assert net.auto_steps and net.step_choice.grid == STEP_GRID
    assert net.num_steps == net.step_choice.num_steps
    assert inference.summary["num_steps"] == [net.num_steps]
    assert ("num_steps", 1) in tracker.calls
    posterior = inference.build_posterior()
    assert posterior.num_steps == net.num_steps
    assert inference.build_posterior(num_steps=2).num_steps == 2  # a number overrides
    assert inference.build_posterior(num_steps=None).num_steps == net.num_steps
    text = repr(posterior)
    assert text.startswith(
        f"ConsistencyPosterior(theta_shape=(3,), x_shape=(3,), num_steps={net.num_steps} (auto: "
        "kernel score of 1, 2, 3, 5, 10 steps on 30 held-out simulations), "
    )
    restored = pickle.loads(pickle.dumps(posterior))
    assert restored.num_steps == net.num_steps and repr(restored) == text
    posterior.num_steps = 7 if net.num_steps != 7 else 2  # a number set by hand shows as it is
    assert f"num_steps={posterior.num_steps}, eps=" in repr(posterior)
    # A second round chooses again.
    inference.append_simulations(theta, x).train(max_num_epochs=1)
    assert len(inference.summary["num_steps"]) == 2


@pytest.mark.parametrize("steps", [3, 4])
def test_a_number_given_to_the_network_is_kept(steps):
    build = consistency_nn(hidden_features=16, num_layers=1, time_embedding_dim=8, num_steps=steps)
    inference, theta, x = make_inference(build, n=100)
    inference.append_simulations(theta, x).train(max_num_epochs=1)
    assert not inference._neural_net.auto_steps
    assert inference._neural_net.step_choice is None
    assert "num_steps" not in inference.summary
    assert inference.build_posterior().num_steps == steps


@pytest.mark.parametrize("bad", ["fast", "AUTO", 0, 2.5])
def test_bad_num_steps_names_the_choices(bad):
    error = ValueError if bad in ("fast", "AUTO", 0) else TypeError
    with pytest.raises(error, match="num_steps"):
        consistency_nn(num_steps=bad)
