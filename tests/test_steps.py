"""The choice of sampling steps after training (`sbi_cmpe.steps`)."""

import pickle

import pytest
import torch

from sbi_cmpe import consistency_nn
from sbi_cmpe.steps import STEP_GRID, choose_num_steps, one_standard_error_choice
from sbi_cmpe.validation import energy_scores
from tests.conftest import Recorder, make_inference


def _scores(means, spread=0.01, n=400):
    """Per-simulation scores `(G, n)` with exactly the given means: a part shared by all
    numbers of steps plus alternating noise of size `spread` (mean zero, its own sign
    pattern per row)."""
    shared = torch.randn(n)
    shared = shared - shared.mean()
    signs = torch.tensor([1.0, -1.0]).repeat(n // 2)  # (n,)
    rows = [torch.roll(signs, shifts=g) * spread for g in range(len(means))]
    return shared + torch.stack(rows) + torch.tensor(means)[:, None]


def test_rule_takes_a_clear_best():
    grid = (1, 2, 3, 5, 10)
    chosen, se = one_standard_error_choice(grid, _scores([0.9, 0.5, 0.3, 0.2, 0.25]))
    assert chosen == 5
    assert se.shape == (5,) and se[3] == 0


def test_rule_prefers_fewer_steps_within_one_standard_error():
    # 3 and 5 steps differ by far less than the noise of their paired difference.
    grid = (1, 2, 3, 5, 10)
    means = [0.9, 0.5, 0.2005, 0.2, 0.3]
    assert one_standard_error_choice(grid, _scores(means, spread=0.1))[0] == 3
    # With little noise the same gap is resolved, and the best wins.
    assert one_standard_error_choice(grid, _scores(means, spread=1e-5))[0] == 5


def test_rule_with_one_simulation_takes_the_best_mean():
    chosen, se = one_standard_error_choice((1, 3), torch.tensor([[0.5], [0.4]]))
    assert chosen == 3 and torch.all(se == 0)


@pytest.fixture
def trained(tiny_builder):
    inference, theta, x = make_inference(tiny_builder, n=200)
    inference.append_simulations(theta, x).train(max_num_epochs=3)
    return inference


def test_choice_is_the_rule_applied_to_energy_scores(trained):
    net = trained._neural_net
    theta, x = trained._validation_data()
    choice = choose_num_steps(net, theta, x, grid=(3, 1, 2, 2), min_draws=256)
    assert choice.grid == (1, 2, 3) and choice.num_simulations == len(theta)
    scores = torch.stack(
        [energy_scores(net, theta, x, min_draws=256, num_steps=k) for k in (1, 2, 3)]
    )
    assert choice.num_steps == one_standard_error_choice((1, 2, 3), scores)[0]
    assert choice.scores == tuple(round(float(s), 6) for s in scores.mean(1))
    again = choose_num_steps(net, theta, x, grid=(1, 2, 3), min_draws=256)
    assert again.num_steps == choice.num_steps and again.scores == choice.scores
    assert choice.seconds >= 0


def test_choice_errors(trained):
    net = trained._neural_net
    theta, x = trained._validation_data()
    with pytest.raises(ValueError, match="at least one held-out simulation"):
        choose_num_steps(net, theta[:0], x[:0])
    with pytest.raises(ValueError):
        choose_num_steps(net, theta, x, grid=(0, 3))


def test_training_chooses_the_default_steps_and_logs_them(tiny_builder):
    tracker = Recorder()
    inference, theta, x = make_inference(tiny_builder, n=200, tracker=tracker)
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
    restored = pickle.loads(pickle.dumps(posterior))
    assert restored.num_steps == net.num_steps and repr(restored) == repr(posterior)
    # A second round chooses again.
    inference.append_simulations(theta, x).train(max_num_epochs=1)
    assert len(inference.summary["num_steps"]) == 2


def test_a_number_given_to_the_network_is_kept():
    build = consistency_nn(hidden_features=16, num_layers=1, time_embedding_dim=8, num_steps=4)
    inference, theta, x = make_inference(build, n=100)
    inference.append_simulations(theta, x).train(max_num_epochs=1)
    assert not inference._neural_net.auto_steps
    assert inference._neural_net.step_choice is None
    assert "num_steps" not in inference.summary
    assert inference.build_posterior().num_steps == 4


@pytest.mark.parametrize("bad", ["fast", "AUTO", 0, 2.5])
def test_bad_num_steps_names_the_choices(bad):
    error = ValueError if bad in ("fast", "AUTO", 0) else TypeError
    with pytest.raises(error, match="num_steps"):
        consistency_nn(num_steps=bad)
