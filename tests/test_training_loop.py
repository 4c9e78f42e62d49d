"""The training loop: curriculum, resume, validation spacing, stopping and logging."""

import warnings

import pytest
import torch

from sbi_cmpe import CMPEInference
from sbi_cmpe.consistency import num_discretization_steps
from sbi_cmpe.training_loop import start_run
from tests.conftest import Recorder, linear_gaussian_data, make_inference


def recording_loss_keyword(inference, name, default):
    """Replace the network's loss by one that records the keyword `name` (`default` when
    not given) at each training step; returns the list it fills."""
    net, seen = inference._neural_net, []
    loss = net.loss

    def recording_loss(*args, **kwargs):
        if torch.is_grad_enabled():
            seen.append(kwargs.get(name, default))
        return loss(*args, **kwargs)

    net.loss = recording_loss
    return seen


def recording_warm_flags(inference):
    """The `warm_start` flag of each training step."""
    return recording_loss_keyword(inference, "warm_start", False)


def test_warm_start_takes_the_first_steps_and_is_never_validated(tiny_builder, monkeypatch):
    """A warm start of 0.6 of 40 steps: 24 steps with the teacher at epsilon, then 16 of
    consistency training, validated only after the warm start (epochs 5 batches long)."""
    monkeypatch.setattr("sbi_cmpe.validation.MIN_STEPS_PER_VALIDATION", 1)
    inference, theta, x = make_inference(tiny_builder)
    inference.append_simulations(theta, x).train(max_num_epochs=1, training_batch_size=50)
    flags = recording_warm_flags(inference)
    validated = []
    monkeypatch.setattr(
        inference, "_validation_loss", lambda *a: validated.append(inference.epoch) or 1.0
    )
    inference.train(max_num_epochs=8, training_batch_size=50, warm_start=0.6)
    assert inference._run.warm_steps == 24
    assert flags == [True] * 24 + [False] * 16
    assert validated == [5, 6, 7, 8]  # epoch 5 is the first after step 24


def test_validation_spacing_counts_from_the_end_of_the_warm_start(tiny_builder, monkeypatch):
    """Half of 300 epochs of 5 steps warm: the warm start ends with epoch 150 exactly, and
    validations come 20 epochs (100 steps) later, at 170, ..., 290 and the last epoch."""
    inference, theta, x = make_inference(tiny_builder)
    validated = []
    monkeypatch.setattr(
        inference, "_validation_loss", lambda *a: validated.append(inference.epoch) or 1.0
    )
    inference.append_simulations(theta, x).train(
        max_num_epochs=300, training_batch_size=50, warm_start=0.5
    )
    assert inference._run.warm_steps == 750
    assert validated == [170, 190, 210, 230, 250, 270, 290, 300]


def test_the_last_step_is_never_warm(tiny_builder):
    """0.99 of 40 steps rounds down to 39, so the last step trains consistency; a resumed
    call whose budget ends inside the warm start still ends with a consistency step."""
    inference, theta, x = make_inference(tiny_builder)
    inference.append_simulations(theta, x).train(max_num_epochs=1, training_batch_size=50)
    flags = recording_warm_flags(inference)
    inference.train(max_num_epochs=8, training_batch_size=50, warm_start=0.99)
    assert inference._run.warm_steps == 39 and flags == [True] * 39 + [False]
    run = inference._run
    run.warm_steps = 45  # as a run of 50 steps, interrupted in its warm start, would have
    start_run(inference._neural_net, 5, 300, 6, None, run)  # resumed for 6 epochs of 5 steps
    assert run.total_steps == 30 and run.warm_steps == 29


def test_resumed_run_keeps_its_warm_start(tiny_builder):
    inference, theta, x = make_inference(tiny_builder)
    inference.append_simulations(theta, x).train(
        max_num_epochs=4, training_batch_size=50, warm_start=0.5
    )
    assert inference._run.warm_steps == 10
    flags = recording_warm_flags(inference)
    with pytest.warns(UserWarning, match="warm_start=0.9 is ignored"):
        inference.train(
            max_num_epochs=8, training_batch_size=50, resume_training=True, warm_start=0.9
        )
    assert inference._run.warm_steps == 10 and flags == [False] * 20


@pytest.mark.parametrize("dim, warm_start, warm_steps", [(2, None, 10), (3, None, 0), (2, 0.0, 0)])
def test_default_warm_start_is_half_on_a_new_network_up_to_two_parameters(
    tiny_builder, dim, warm_start, warm_steps
):
    inference, theta, x = make_inference(tiny_builder, dim=dim)
    inference.append_simulations(theta, x)
    inference.train(max_num_epochs=4, training_batch_size=50, warm_start=warm_start)
    assert inference._run.warm_steps == warm_steps


def test_a_continued_network_gets_no_default_warm_start(tiny_builder):
    """Only a new network (first call or `retrain_from_scratch`) gets the default."""
    inference, theta, x = make_inference(tiny_builder, dim=2)
    inference.append_simulations(theta, x).train(max_num_epochs=1, training_batch_size=50)
    flags = recording_warm_flags(inference)
    inference.train(max_num_epochs=4, training_batch_size=50)
    assert inference._run.warm_steps == 0 and flags == [False] * 20
    inference.train(max_num_epochs=4, training_batch_size=50, retrain_from_scratch=True)
    assert inference._run.warm_steps == 10
    with warnings.catch_warnings():  # resuming passes no warm start to be ignored
        warnings.simplefilter("error")
        inference.train(max_num_epochs=6, training_batch_size=50, resume_training=True)
    assert inference._run.warm_steps == 10 and inference.optimizer_steps == 30


def test_curriculum_follows_real_steps_and_resume_continues(tiny_builder):
    inference, theta, x = make_inference(tiny_builder)
    inference.append_simulations(theta, x)
    inference.train(max_num_epochs=2, training_batch_size=50)
    step, points = inference.optimizer_steps, inference.num_discretization_points
    indices = inference.train_indices.clone()
    assert points == 51  # a 2-epoch run also ends on the final grid
    inference.train(max_num_epochs=6, training_batch_size=50, resume_training=True)
    assert inference.optimizer_steps == 6 * 5 > step
    assert inference.num_discretization_points == 51  # never back to a coarser grid
    assert torch.equal(inference.train_indices, indices)
    assert inference.epoch == 6


def test_curriculum_of_a_run_follows_its_real_optimizer_steps(tiny_builder):
    """The grid used at each optimizer step is N(k) over the steps the run takes."""
    inference, theta, x = make_inference(tiny_builder)
    inference.append_simulations(theta, x)
    inference.train(max_num_epochs=1, training_batch_size=50, warm_start=0.0)  # builds the net
    seen = recording_loss_keyword(inference, "num_points", None)
    inference.train(
        max_num_epochs=8, training_batch_size=50, retrain_from_scratch=False, warm_start=0.0
    )
    expected = [num_discretization_steps(k, 40, 10, 50) for k in range(40)]
    assert seen == expected


def test_warm_start_and_consistency_training_each_have_their_own_cycle(tiny_builder):
    """0.5 of 40 steps warm: the learning rate falls from its start twice (a cosine over
    the 20 warm steps, then one over the 20 of consistency training), and consistency
    training runs the whole curriculum N(k') over its own 20 steps."""
    from sbi_cmpe.optim import cosine_learning_rate

    inference, theta, x = make_inference(tiny_builder)
    inference.append_simulations(theta, x).train(max_num_epochs=1, training_batch_size=50)
    net, rates, points = inference._neural_net, [], []
    loss = net.loss

    def recording_loss(*args, **kwargs):
        if torch.is_grad_enabled():
            rates.append(inference._run.optimizer.param_groups[0]["lr"])
            points.append(kwargs["num_points"])
        return loss(*args, **kwargs)

    net.loss = recording_loss
    inference.train(max_num_epochs=8, training_batch_size=50, warm_start=0.5, learning_rate=1e-3)
    cycle = [cosine_learning_rate(k, 20, 1e-3) for k in range(20)]
    assert rates == pytest.approx(cycle + cycle)
    assert points[20:] == [num_discretization_steps(k, 20, 10, 50) for k in range(20)]
    assert points[:20] == [11] * 20  # the warm start's curriculum position stays put
    assert points[20] == 11  # consistency training starts on the coarsest grid


def test_best_weights_are_restored(tiny_builder, monkeypatch):
    """The weights of the epoch with the best validation score come back."""
    monkeypatch.setattr("sbi_cmpe.validation.MIN_STEPS_PER_VALIDATION", 1)
    inference, theta, x = make_inference(tiny_builder)
    inference.append_simulations(theta, x)
    scores = iter([3.0, 2.0, 1.0, 2.5, 2.6, 2.7, 2.8])
    snapshots = []

    def validation(*args):
        snapshots.append({k: v.clone() for k, v in inference._neural_net.state_dict().items()})
        return next(scores)

    monkeypatch.setattr(inference, "_validation_loss", validation)
    est = inference.train(max_num_epochs=7, training_batch_size=50)
    assert inference.summary["best_validation_loss"] == [1.0]
    assert all(torch.equal(v, snapshots[2][k]) for k, v in est.state_dict().items())


def test_clear_overfitting_stops_training(tiny_builder, monkeypatch):
    """Scores more than 10% above the best for `stop_after_epochs` epochs of the last
    curriculum stage stop the run."""
    monkeypatch.setattr("sbi_cmpe.validation.MIN_STEPS_PER_VALIDATION", 1)
    inference, theta, x = make_inference(tiny_builder)
    inference.append_simulations(theta, x)
    scores = iter([1.0] + [2.0] * 50)
    monkeypatch.setattr(inference, "_validation_loss", lambda *args: next(scores))
    inference.train(max_num_epochs=40, training_batch_size=50, stop_after_epochs=3, warm_start=0.0)
    # 40 epochs x 5 steps in 4 curriculum stages: the last starts in epoch 31
    assert inference.epoch == 33


def test_small_fluctuations_keep_the_final_weights(tiny_builder, monkeypatch):
    """Within 10% of the best, the annealed weights of the last step are kept."""
    monkeypatch.setattr("sbi_cmpe.validation.MIN_STEPS_PER_VALIDATION", 1)
    inference, theta, x = make_inference(tiny_builder)
    inference.append_simulations(theta, x)
    scores = iter([1.0, 1.05] * 10)
    monkeypatch.setattr(inference, "_validation_loss", lambda *args: next(scores))
    est = inference.train(max_num_epochs=6, training_batch_size=50, stop_after_epochs=2)
    assert inference.epoch == 6
    final = {k: v.clone() for k, v in est.state_dict().items()}
    assert inference._run.stopping.best_state is not None
    assert any(not torch.equal(v, inference._run.stopping.best_state[k]) for k, v in final.items())


def recording_validations(tiny_builder, monkeypatch):
    """A trainer with data whose validations record their epoch (and score 1.0)."""
    inference, theta, x = make_inference(tiny_builder)
    inference.append_simulations(theta, x)
    validated = []
    monkeypatch.setattr(
        inference, "_validation_loss", lambda *args: validated.append(inference.epoch) or 1.0
    )
    return inference, validated


def test_validation_every_hundred_steps_and_after_the_last_epoch(tiny_builder, monkeypatch):
    """With 5 batches per epoch, epochs 20, 40 and the last (43) are validated."""
    inference, validated = recording_validations(tiny_builder, monkeypatch)
    inference.train(max_num_epochs=43, training_batch_size=50, warm_start=0.0)
    assert validated == [20, 40, 43]
    assert len(inference.summary["validation_loss"]) == 3
    assert len(inference.summary["epoch_durations_sec"]) == 43


def test_patience_counts_epochs_between_validations(tiny_builder, monkeypatch):
    """In the last curriculum stage, degraded scores 20 epochs apart stop a run with a
    patience of 40 epochs at the second of them."""
    inference, theta, x = make_inference(tiny_builder)
    inference.append_simulations(theta, x)
    scores = iter([1.0] * 8 + [2.0] * 10)
    monkeypatch.setattr(inference, "_validation_loss", lambda *args: next(scores))
    # 400 epochs x 5 steps in 4 curriculum stages: the last starts in epoch 301
    inference.train(
        max_num_epochs=400, training_batch_size=50, stop_after_epochs=40, warm_start=0.0
    )
    # validations at 20, ..., 160 score 1.0; at 180, ..., 300 (before the last stage) 2.0
    # counts nothing; at 320 and 340 it counts 20 epochs each
    assert inference.epoch == 340


def test_validation_schedule_survives_resume(tiny_builder, monkeypatch):
    """A resumed run validates 20 epochs (100 steps) after the last validation."""
    inference, validated = recording_validations(tiny_builder, monkeypatch)
    inference.train(max_num_epochs=25, training_batch_size=50, warm_start=0.0)
    inference.train(max_num_epochs=60, training_batch_size=50, resume_training=True)
    assert validated == [20, 25, 45, 60]


def test_validation_scores_are_logged_once_at_their_epochs(tiny_builder, monkeypatch):
    tracker = Recorder()
    prior, _, theta, x = linear_gaussian_data(2, 300)
    inference = CMPEInference(
        prior, density_estimator=tiny_builder, show_progress_bars=False, tracker=tracker
    )
    monkeypatch.setattr(inference, "_validation_loss", lambda *args: 1.0)
    inference.append_simulations(theta, x).train(
        max_num_epochs=43, training_batch_size=50, warm_start=0.0
    )
    steps = [step for name, step in tracker.calls if name == "validation_loss"]
    assert steps == [20, 40, 43]
    assert inference.summary["validation_epochs"] == [20, 40, 43]
    losses = [step for name, step in tracker.calls if name == "training_loss"]
    assert losses == list(range(1, 44))


def test_per_epoch_metrics_keep_counting_over_calls_of_train(tiny_builder):
    """A resumed run and a new run log their epochs after the earlier ones, once each."""
    tracker = Recorder()
    prior, _, theta, x = linear_gaussian_data(2, 300)
    inference = CMPEInference(
        prior, density_estimator=tiny_builder, show_progress_bars=False, tracker=tracker
    )
    inference.append_simulations(theta, x).train(max_num_epochs=3, training_batch_size=50)
    inference.train(max_num_epochs=5, training_batch_size=50, resume_training=True)
    inference.train(max_num_epochs=2, training_batch_size=50, retrain_from_scratch=True)
    names = ("training_loss", "epoch_durations_sec", "learning_rate", "num_discretization_points")
    for name in names:
        assert [step for metric, step in tracker.calls if metric == name] == list(range(1, 8))
