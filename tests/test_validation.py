"""Validation: the energy score, its spacing and the stopping rule."""

import pytest
import torch

from sbi_cmpe import consistency_nn
from sbi_cmpe.validation import (
    MIN_STEPS_PER_VALIDATION,
    StoppingRule,
    energy_score,
    is_degraded,
    validation_interval,
)


def test_stopping_rule_counts_degraded_epochs_of_the_last_stage_only():
    rule, net = StoppingRule(every=5), torch.nn.Linear(1, 1)
    assert [rule.due(epoch, last=False) for epoch in (4, 5)] == [False, True]
    assert rule.due(2, last=True)  # the last epoch of a run is always validated
    assert rule.weights_to_restore(1.0) is None  # nothing recorded yet
    assert not rule.update(1.0, net, True, 5, stop_after_epochs=10)
    assert rule.best_score == 1.0 and rule.best_state is not None
    assert [rule.due(epoch, last=False) for epoch in (9, 10)] == [False, True]
    assert not rule.update(1.2, net, False, 10, stop_after_epochs=10)  # earlier stage
    assert rule.degraded_epochs == 0
    assert not rule.update(1.2, net, True, 15, stop_after_epochs=10)
    assert rule.degraded_epochs == 5
    assert not rule.update(1.05, net, True, 20, stop_after_epochs=10)  # within 10%: reset
    assert rule.degraded_epochs == 0
    assert not rule.update(1.2, net, True, 25, stop_after_epochs=10)
    assert rule.update(1.2, net, True, 30, stop_after_epochs=10)
    assert rule.best_score == 1.0
    assert rule.weights_to_restore(1.05) is None  # within 10%: the final weights stay
    assert rule.weights_to_restore(1.2) is rule.best_state


@pytest.mark.parametrize("batches, epochs", [(1, 100), (3, 34), (100, 1), (500, 1)])
def test_validation_interval_holds_the_least_steps(batches, epochs):
    assert validation_interval(batches) == epochs
    assert validation_interval(batches) * batches >= MIN_STEPS_PER_VALIDATION


def test_is_degraded_is_relative_to_the_best():
    assert not is_degraded(1.1, 1.0) and is_degraded(1.11, 1.0)
    assert is_degraded(-0.8, -1.0)  # relative to |best|


def test_energy_score_prefers_draws_near_the_truth():
    torch.manual_seed(0)
    estimator = consistency_nn(hidden_features=8, num_layers=1)(
        torch.randn(50, 2), torch.randn(50, 3)
    )
    theta, x = torch.randn(20, 2), torch.randn(20, 3)
    near = energy_score(estimator, theta, x, min_draws=64)
    assert near == energy_score(estimator, theta, x, min_draws=64)  # fixed noise
    assert near < energy_score(estimator, theta + 10.0, x, min_draws=64)
