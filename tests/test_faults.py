"""Faults in training, numpy/dtype input, reproducibility."""

import pytest
import torch

from sbi_cmpe import CMPEInference
from sbi_cmpe.consistency import num_discretization_steps
from tests.conftest import linear_gaussian_data


def trainer(tiny_builder, n=300):
    prior, _, theta, x = linear_gaussian_data(2, n)
    inference = CMPEInference(prior, density_estimator=tiny_builder, show_progress_bars=False)
    return inference.append_simulations(theta, x)


def record_points(net, seen, fail_at=None, error=KeyboardInterrupt):
    """Wrap `net.loss` to record the grid size of each training step (and fail once)."""
    loss = net.loss
    pending = [fail_at] if fail_at is not None else []

    def wrapped(*args, num_points=None, **kwargs):
        if torch.is_grad_enabled():
            if pending and len(seen) == pending[0]:
                pending.clear()
                raise error()
            seen.append(num_points)
        return loss(*args, num_points=num_points, **kwargs)

    net.loss = wrapped


def test_keyboard_interrupt_then_resume_walks_the_same_curriculum(tiny_builder):
    inference = trainer(tiny_builder)
    inference.train(max_num_epochs=1, training_batch_size=50, warm_start=0.0)  # builds the net
    net = inference._neural_net
    seen = []
    record_points(net, seen, fail_at=17)
    with pytest.raises(KeyboardInterrupt), pytest.warns(UserWarning, match="step 17 of 40"):
        inference.train(max_num_epochs=8, training_batch_size=50, warm_start=0.0)
    assert inference.optimizer_steps == 17
    with pytest.warns(UserWarning, match="trained for 17 of 40"):
        posterior = inference.build_posterior()  # usable, with a warning
    assert posterior.sample((3,), x=torch.zeros(2)).shape == (3, 2)
    inference.train(max_num_epochs=8, training_batch_size=50, resume_training=True)
    assert inference.optimizer_steps == 40
    assert seen == [num_discretization_steps(k, 40, 10, 50) for k in range(40)]


def test_non_finite_loss_stops_with_epoch_and_step(tiny_builder):
    inference = trainer(tiny_builder)
    inference.train(max_num_epochs=1, training_batch_size=50)
    net = inference._neural_net
    before = {k: v.clone() for k, v in net.state_dict().items()}
    loss = net.loss
    calls = []

    def exploding(*args, **kwargs):
        out = loss(*args, **kwargs)
        if torch.is_grad_enabled():
            calls.append(1)
            if len(calls) == 8:
                return out * float("nan")
        return out

    net.loss = exploding
    with pytest.raises(RuntimeError, match=r"became nan at epoch 2, optimizer step 8"):
        inference.train(max_num_epochs=4, training_batch_size=50)
    # The weights are those after step 7, all finite, and they did change.
    state = net.state_dict()
    assert all(torch.isfinite(v).all() for v in state.values())
    assert any(not torch.equal(before[k], state[k]) for k in state)


def test_numpy_and_other_dtypes_are_accepted(tiny_builder):
    prior, _, theta, x = linear_gaussian_data(2, 300)
    inference = CMPEInference(prior, density_estimator=tiny_builder, show_progress_bars=False)
    inference.append_simulations(theta.numpy(), x.double())
    inference.append_simulations(theta, x.round().int())
    stored_theta, stored_x, _ = inference.get_simulations()
    assert stored_theta.dtype == stored_x.dtype == torch.float32
    assert stored_theta.shape == (600, 2)
    with pytest.raises(TypeError, match="theta must be a torch tensor or a numpy array"):
        inference.append_simulations(theta.tolist(), x)
    with pytest.raises(TypeError, match="x must hold real numbers"):
        inference.append_simulations(theta, x > 0)


def test_same_seed_same_training_and_samples(tiny_builder):
    def run():
        torch.manual_seed(11)
        inference = trainer(tiny_builder)
        inference.train(max_num_epochs=2)
        torch.manual_seed(5)
        return (
            inference.train_indices,
            inference.summary["training_loss"],
            inference.build_posterior().sample((20,), x=torch.zeros(2)),
        )

    a, b = run(), run()
    assert torch.equal(a[0], b[0]) and a[1] == b[1] and torch.equal(a[2], b[2])
