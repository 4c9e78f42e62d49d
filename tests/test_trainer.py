"""The trainer: sbi's interface, bad input, curriculum and resume."""

import pickle
import warnings

import pytest
import torch
from sbi.inference import NPE
from sbi.utils import BoxUniform

from sbi_cmpe import CMPEInference, ConsistencyEstimator, consistency_nn
from sbi_cmpe.consistency import num_discretization_steps
from tests.conftest import linear_gaussian_data


def make(tiny_builder, n=300, dim=2, **kwargs):
    prior, _, theta, x = linear_gaussian_data(dim, n)
    inference = CMPEInference(
        prior, density_estimator=tiny_builder, show_progress_bars=False, **kwargs
    )
    return inference, theta, x


def test_train_returns_estimator_and_logs_summary(tiny_builder):
    inference, theta, x = make(tiny_builder)
    est = inference.append_simulations(theta, x).train(max_num_epochs=3, training_batch_size=50)
    assert isinstance(est, ConsistencyEstimator) and not est.training
    assert inference.summary["epochs_trained"] == [3]
    # 5 batches per epoch: validated every 20 epochs (100 steps) and after the last one
    assert len(inference.summary["validation_loss"]) == 1
    assert inference._step == 3 * (270 // 50)
    assert inference._num_points == est.s1 + 1


def test_default_budget_is_finite(tiny_builder, monkeypatch):
    import sbi_cmpe.schedule as schedule

    monkeypatch.setattr(schedule, "LOW_DIM_NUM_STEPS", 20)
    inference, theta, x = make(tiny_builder)
    inference.append_simulations(theta, x).train(training_batch_size=50)
    assert inference._step == 20 + (-20 % 5)  # whole epochs of 5 batches


def test_default_budget_depends_on_the_parameter_dimension():
    from sbi_cmpe.schedule import DEFAULT_NUM_STEPS, LOW_DIM_NUM_STEPS, default_num_steps

    assert default_num_steps(1, 10) == default_num_steps(3, 10**6) == LOW_DIM_NUM_STEPS == 20_000
    assert default_num_steps(6, 10**4) == default_num_steps(10, 2000) == DEFAULT_NUM_STEPS
    assert DEFAULT_NUM_STEPS == 10_000
    # Four and five parameters: 5 steps per simulation, up to the low-dimensional budget.
    assert default_num_steps(4, 10**4) == default_num_steps(5, 10**6) == LOW_DIM_NUM_STEPS
    assert default_num_steps(4, 1000) == default_num_steps(5, 1000) == 5000
    assert default_num_steps(6, 1000) == 5000
    assert default_num_steps(5, 3000) == 15_000


@pytest.mark.parametrize("num_sims, steps", [(1000, 5000), (1500, 7500), (10_000, 10_000), (0, 1)])
def test_default_budget_of_higher_dimensions_follows_the_simulations(num_sims, steps):
    from sbi_cmpe.schedule import default_num_steps

    assert default_num_steps(10, num_sims) == steps
    assert default_num_steps(2, num_sims) == 20_000


@pytest.mark.parametrize("theta_dim, expected", [(2, 1e-3), (5, 1e-3), (6, 5e-4)])
def test_default_learning_rate_depends_on_the_parameter_dimension(theta_dim, expected):
    prior = BoxUniform(-torch.ones(theta_dim), torch.ones(theta_dim))
    theta = prior.sample((60,))
    inference = CMPEInference(
        prior,
        density_estimator=consistency_nn(hidden_features=8, num_layers=1),
        show_progress_bars=False,
    )
    inference.append_simulations(theta, theta + 0.1 * torch.randn_like(theta))
    inference.train(max_num_epochs=1)
    assert inference._run.base_lr == expected
    inference.train(max_num_epochs=1, learning_rate=3e-4, retrain_from_scratch=True)
    assert inference._run.base_lr == 3e-4
    inference.train(max_num_epochs=2, resume_training=True)  # keeps the run's rate
    assert inference._run.base_lr == 3e-4
    with pytest.warns(UserWarning, match="learning_rate=0.01 is ignored"):
        inference.train(max_num_epochs=3, resume_training=True, learning_rate=1e-2)
    assert inference._run.base_lr == 3e-4


def test_curriculum_follows_real_steps_and_resume_continues(tiny_builder):
    inference, theta, x = make(tiny_builder)
    inference.append_simulations(theta, x)
    inference.train(max_num_epochs=2, training_batch_size=50)
    step, points = inference._step, inference._num_points
    indices = inference.train_indices.clone()
    assert points == 51  # a 2-epoch run also ends on the final grid
    inference.train(max_num_epochs=6, training_batch_size=50, resume_training=True)
    assert inference._step == 6 * 5 > step
    assert inference._num_points == 51  # never back to a coarser grid
    assert torch.equal(inference.train_indices, indices)
    assert inference.epoch == 6


def test_curriculum_of_a_run_follows_its_real_optimizer_steps(tiny_builder):
    """The grid used at each optimizer step is N(k) over the steps the run takes."""
    inference, theta, x = make(tiny_builder)
    inference.append_simulations(theta, x)
    seen = []
    inference.train(max_num_epochs=1, training_batch_size=50)  # builds the net
    net = inference._neural_net
    loss = net.loss

    def recording_loss(*args, num_points=None, **kwargs):
        if torch.is_grad_enabled():
            seen.append(num_points)
        return loss(*args, num_points=num_points, **kwargs)

    net.loss = recording_loss
    inference.train(max_num_epochs=8, training_batch_size=50, retrain_from_scratch=False)
    expected = [num_discretization_steps(k, 40, 10, 50) for k in range(40)]
    assert seen == expected


def test_resume_needs_earlier_training(tiny_builder):
    inference, theta, x = make(tiny_builder)
    inference.append_simulations(theta, x)
    with pytest.raises(RuntimeError, match="earlier call"):
        inference.train(resume_training=True)


def test_train_without_simulations(tiny_builder):
    with pytest.raises(RuntimeError, match="append_simulations"):
        CMPEInference(
            BoxUniform(-torch.ones(2), torch.ones(2)), density_estimator=tiny_builder
        ).train()


def test_invalid_simulations_are_counted_and_excluded(tiny_builder):
    inference, theta, x = make(tiny_builder)
    x[:3, 0] = float("nan")
    x[3:5, 1] = float("inf")
    with pytest.warns(UserWarning, match="Found 3 simulations with NaN and 2 with infinite"):
        inference.append_simulations(theta, x)
    assert inference.get_simulations()[0].shape[0] == 295


def test_all_invalid_simulations(tiny_builder):
    inference, theta, x = make(tiny_builder)
    with pytest.raises(ValueError, match="All 300 simulations contain NaN"):
        inference.append_simulations(theta, torch.full_like(x, float("nan")))


def test_non_prior_proposal_is_refused(tiny_builder):
    inference, theta, x = make(tiny_builder)
    proposal = BoxUniform(-torch.ones(2), torch.ones(2))
    with pytest.raises(ValueError, match="single-round"):
        inference.append_simulations(theta, x, proposal=proposal)
    inference.append_simulations(theta, x, proposal=inference._prior)  # the prior is fine


@pytest.mark.parametrize(
    "theta_shape, x_shape, message",
    [
        ((300, 2), (299, 2), "same number of simulations"),
        ((300, 3), (300, 2), "prior has event shape"),
        ((300,), (300, 2), r"theta must have shape \(N, D\)"),
        ((300, 2), (300,), r"x must have shape \(N, \*x_shape\)"),
    ],
)
def test_mismatched_shapes_are_refused(tiny_builder, theta_shape, x_shape, message):
    inference, _, _ = make(tiny_builder)
    with pytest.raises(ValueError, match=message):
        inference.append_simulations(torch.zeros(theta_shape), torch.zeros(x_shape))


def test_second_append_with_other_x_shape(tiny_builder):
    inference, theta, x = make(tiny_builder)
    inference.append_simulations(theta, x)
    with pytest.raises(ValueError, match="does not match the earlier"):
        inference.append_simulations(theta, torch.zeros(300, 3))


def test_theta_outside_prior_warns(tiny_builder):
    inference, theta, x = make(tiny_builder)
    theta[0] = 10.0
    with pytest.warns(UserWarning, match="1 of 300 parameter sets lie outside"):
        inference.append_simulations(theta, x)


def test_support_check_draws_nothing(tiny_builder):
    inference, theta, x = make(tiny_builder)
    state = torch.get_rng_state()
    inference.append_simulations(theta, x)  # checks theta against the prior's support
    assert torch.equal(torch.get_rng_state(), state)


def test_no_prior_uses_empirical(tiny_builder):
    _, _, theta, x = linear_gaussian_data(2, 300)
    inference = CMPEInference(density_estimator=tiny_builder, show_progress_bars=False)
    inference.append_simulations(theta, x).train(max_num_epochs=1)
    assert inference.build_posterior().sample((5,), x=x[0]).shape == (5, 2)


def test_build_posterior_before_training(tiny_builder):
    inference, theta, x = make(tiny_builder)
    with pytest.raises(RuntimeError, match="call `train\\(\\)` first"):
        inference.append_simulations(theta, x).build_posterior()


def test_trainer_pickles(tiny_builder):
    inference, theta, x = make(tiny_builder)
    inference.append_simulations(theta, x).train(max_num_epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        restored = pickle.loads(pickle.dumps(inference))
    assert restored._step == inference._step
    restored.train(max_num_epochs=2, resume_training=True)
    assert restored.epoch == 2


def test_drop_in_for_npe_arguments(tiny_builder):
    """The arguments an NPE pipeline passes to `train` are accepted."""
    inference, theta, x = make(tiny_builder)
    kwargs = dict(
        training_batch_size=64,
        learning_rate=1e-3,
        validation_fraction=0.2,
        stop_after_epochs=5,
        max_num_epochs=2,
        clip_max_norm=1.0,
        retrain_from_scratch=False,
        show_train_summary=False,
        dataloader_kwargs={"num_workers": 0},
    )
    inference.append_simulations(theta, x).train(**kwargs)
    npe = NPE(inference._prior, show_progress_bars=False)
    npe.append_simulations(theta, x).train(**kwargs)


def test_best_weights_are_restored(tiny_builder, monkeypatch):
    """The weights of the epoch with the best validation score come back."""
    monkeypatch.setattr("sbi_cmpe.schedule.MIN_STEPS_PER_VALIDATION", 1)
    inference, theta, x = make(tiny_builder)
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
    monkeypatch.setattr("sbi_cmpe.schedule.MIN_STEPS_PER_VALIDATION", 1)
    inference, theta, x = make(tiny_builder)
    inference.append_simulations(theta, x)
    scores = iter([1.0] + [2.0] * 50)
    monkeypatch.setattr(inference, "_validation_loss", lambda *args: next(scores))
    inference.train(max_num_epochs=40, training_batch_size=50, stop_after_epochs=3)
    # 40 epochs x 5 steps in 4 curriculum stages: the last starts in epoch 31
    assert inference.epoch == 33


def test_small_fluctuations_keep_the_final_weights(tiny_builder, monkeypatch):
    """Within 10% of the best, the annealed weights of the last step are kept."""
    monkeypatch.setattr("sbi_cmpe.schedule.MIN_STEPS_PER_VALIDATION", 1)
    inference, theta, x = make(tiny_builder)
    inference.append_simulations(theta, x)
    scores = iter([1.0, 1.05] * 10)
    monkeypatch.setattr(inference, "_validation_loss", lambda *args: next(scores))
    est = inference.train(max_num_epochs=6, training_batch_size=50, stop_after_epochs=2)
    assert inference.epoch == 6
    final = {k: v.clone() for k, v in est.state_dict().items()}
    assert inference._run.stopping.best_state is not None
    assert any(not torch.equal(v, inference._run.stopping.best_state[k]) for k, v in final.items())


def test_validation_score_is_an_energy_score(tiny_builder):
    """Lower for draws centred on the truth than for draws shifted away from it."""
    inference, theta, x = make(tiny_builder)
    inference.append_simulations(theta, x).train(max_num_epochs=1)
    net = inference._neural_net
    val_theta, val_x = inference._validation_data()
    good = inference._validation_loss(val_theta, val_x)
    far = inference._validation_loss(val_theta + 10 * net.theta_std, val_x)
    assert good < far
    assert good == inference._validation_loss(val_theta, val_x)  # fixed noise


def recording_validations(tiny_builder, monkeypatch):
    """A trainer with data whose validations record their epoch (and score 1.0)."""
    inference, theta, x = make(tiny_builder)
    inference.append_simulations(theta, x)
    validated = []
    monkeypatch.setattr(
        inference, "_validation_loss", lambda *args: validated.append(inference.epoch) or 1.0
    )
    return inference, validated


def test_validation_every_hundred_steps_and_after_the_last_epoch(tiny_builder, monkeypatch):
    """With 5 batches per epoch, epochs 20, 40 and the last (43) are validated."""
    inference, validated = recording_validations(tiny_builder, monkeypatch)
    inference.train(max_num_epochs=43, training_batch_size=50)
    assert validated == [20, 40, 43]
    assert len(inference.summary["validation_loss"]) == 3
    assert len(inference.summary["epoch_durations_sec"]) == 43


def test_patience_counts_epochs_between_validations(tiny_builder, monkeypatch):
    """In the last curriculum stage, degraded scores 20 epochs apart stop a run with a
    patience of 40 epochs at the second of them."""
    inference, theta, x = make(tiny_builder)
    inference.append_simulations(theta, x)
    scores = iter([1.0] * 8 + [2.0] * 10)
    monkeypatch.setattr(inference, "_validation_loss", lambda *args: next(scores))
    # 400 epochs x 5 steps in 4 curriculum stages: the last starts in epoch 301
    inference.train(max_num_epochs=400, training_batch_size=50, stop_after_epochs=40)
    # validations at 20, ..., 160 score 1.0; at 180, ..., 300 (before the last stage) 2.0
    # counts nothing; at 320 and 340 it counts 20 epochs each
    assert inference.epoch == 340


def test_validation_schedule_survives_resume(tiny_builder, monkeypatch):
    """A resumed run validates 20 epochs (100 steps) after the last validation."""
    inference, validated = recording_validations(tiny_builder, monkeypatch)
    inference.train(max_num_epochs=25, training_batch_size=50)
    inference.train(max_num_epochs=60, training_batch_size=50, resume_training=True)
    assert validated == [20, 25, 45, 60]


class Recorder:
    """A tracker that records (metric, step) pairs."""

    log_dir = None

    def __init__(self):
        self.calls = []

    def log_metric(self, name, value, step=None):
        self.calls.append((name, step))

    def log_metrics(self, metrics, step=None):
        pass

    def log_params(self, params):
        pass

    def add_figure(self, name, figure, step=None):
        pass

    def flush(self):
        pass


def test_validation_scores_are_logged_once_at_their_epochs(tiny_builder, monkeypatch):
    tracker = Recorder()
    prior, _, theta, x = linear_gaussian_data(2, 300)
    inference = CMPEInference(
        prior, density_estimator=tiny_builder, show_progress_bars=False, tracker=tracker
    )
    monkeypatch.setattr(inference, "_validation_loss", lambda *args: 1.0)
    inference.append_simulations(theta, x).train(max_num_epochs=43, training_batch_size=50)
    steps = [step for name, step in tracker.calls if name == "validation_loss"]
    assert steps == [20, 40, 43]
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
    for name in ("training_loss", "epoch_durations_sec"):
        assert [step for metric, step in tracker.calls if metric == name] == list(range(1, 8))


def test_default_budget_follows_theta_not_x(tiny_builder, monkeypatch):
    """Two parameters and seven-dimensional x: the budget of up to 3 parameters."""
    import sbi_cmpe.schedule as schedule

    monkeypatch.setattr(schedule, "LOW_DIM_NUM_STEPS", 20)
    monkeypatch.setattr(schedule, "DEFAULT_NUM_STEPS", 40)
    prior, _, theta, _ = linear_gaussian_data(2, 300)
    x = torch.cat([theta, torch.randn(300, 5)], dim=1)  # counting x would give 40 steps
    inference = CMPEInference(prior, density_estimator=tiny_builder, show_progress_bars=False)
    inference.append_simulations(theta, x).train(training_batch_size=50)
    assert inference._step == 20


def test_stopping_rule_counts_degraded_epochs_of_the_last_stage_only():
    from sbi_cmpe.validation import StoppingRule

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


def test_indexed_batches_match_the_data_loader():
    from torch.utils.data import DataLoader, SubsetRandomSampler, TensorDataset

    from sbi_cmpe.data import indexed_batches

    tensors = (torch.randn(100, 2), torch.randn(100, 3), torch.ones(100, 1))
    loader = DataLoader(
        TensorDataset(*tensors),
        batch_size=16,
        drop_last=True,
        sampler=SubsetRandomSampler(list(range(7, 90))),  # 83: the last 3 are dropped
    )
    torch.manual_seed(3)
    expected = [batch for _ in range(2) for batch in loader]
    after_loader = torch.rand(3)
    torch.manual_seed(3)
    got = [batch for _ in range(2) for batch in indexed_batches(loader)]
    assert torch.equal(torch.rand(3), after_loader)  # the same random draws
    assert len(indexed_batches(loader)) == len(loader) == 5
    assert len(got) == len(expected) == 10
    for a, b in zip(got, expected):
        assert all(torch.equal(u, v) for u, v in zip(a, b))
    with pytest.raises(TypeError, match="TensorDataset"):
        indexed_batches(DataLoader(list(range(10)), batch_size=2))
    with pytest.raises(ValueError, match="collate_fn"):
        indexed_batches(DataLoader(TensorDataset(*tensors), batch_size=2, collate_fn=list))


@pytest.mark.parametrize("norm", [0.5, 4.9999, 5.0, 5.0001, 5.5, 100.0])
@pytest.mark.parametrize("max_norm", [5.0, None])
@pytest.mark.parametrize("older_torch", [False, True])
def test_clip_gradients_matches_clip_grad_norm(norm, max_norm, older_torch, monkeypatch):
    import sbi_cmpe.schedule as schedule

    if older_torch:
        monkeypatch.setattr(schedule, "get_total_norm", None)
    torch.manual_seed(0)
    grads = [torch.randn(4, 3), torch.randn(3)]
    scale = norm / torch.cat([g.flatten() for g in grads]).norm()
    ours = [torch.zeros_like(g, requires_grad=True) for g in grads]
    theirs = [torch.zeros_like(g, requires_grad=True) for g in grads]
    for a, b, g in zip(ours, theirs, grads):
        a.grad, b.grad = g * scale, g * scale
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm or float("inf"))
    got = schedule.clip_gradients(ours, max_norm)
    assert got == pytest.approx(float(expected), rel=1e-6)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a.grad, b.grad, rtol=2e-7, atol=0)


def test_clip_max_norm_must_be_positive(tiny_builder):
    inference, theta, x = make(tiny_builder)
    with pytest.raises(ValueError, match="clip_max_norm must be positive"):
        inference.append_simulations(theta, x).train(max_num_epochs=1, clip_max_norm=0)


def test_custom_loader_arguments_train_the_same_network(tiny_builder):
    weights = []
    for kwargs in (None, {"num_workers": 0}):
        torch.manual_seed(0)
        inference, theta, x = make(tiny_builder)
        inference.append_simulations(theta, x)
        est = inference.train(max_num_epochs=3, training_batch_size=50, dataloader_kwargs=kwargs)
        weights.append(torch.cat([p.detach().flatten() for p in est.parameters()]))
    assert torch.equal(*weights)


def test_gradient_clipping_changes_the_run(tiny_builder):
    weights = []
    for clip in (None, 1e-3):
        torch.manual_seed(0)
        inference, theta, x = make(tiny_builder)
        inference.append_simulations(theta, x)
        est = inference.train(max_num_epochs=3, training_batch_size=50, clip_max_norm=clip)
        weights.append(torch.cat([p.detach().flatten() for p in est.parameters()]))
    assert not torch.allclose(*weights)


def test_default_budget_of_higher_dimensions_counts_all_simulations(tiny_builder, monkeypatch):
    """Four parameters, 300 simulations (270 for training): 1 step per simulation."""
    import sbi_cmpe.schedule as schedule

    monkeypatch.setattr(schedule, "STEPS_PER_SIMULATION", 1)
    inference, theta, x = make(tiny_builder, dim=4)
    inference.append_simulations(theta, x).train(training_batch_size=50)
    assert inference._step == 300  # 60 epochs of 5 batches (270 would give 54)
    # New simulations do not change the budget of a resumed run, which keeps its split.
    inference.append_simulations(theta[:100], x[:100])
    inference.train(training_batch_size=50, resume_training=True)
    assert inference._step == 300
