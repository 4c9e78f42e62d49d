"""CMPEInference: sbi's trainer interface, its checks of simulations and its budget."""

import inspect
import pickle
import warnings

import pytest
import torch
from sbi.inference import NPE
from sbi.utils import BoxUniform

from sbi_cmpe import CMPEInference, ConsistencyEstimator, consistency_nn
from tests.conftest import linear_gaussian_data, make_inference


def test_train_returns_estimator_and_logs_summary(tiny_builder):
    inference, theta, x = make_inference(tiny_builder)
    est = inference.append_simulations(theta, x).train(max_num_epochs=3, training_batch_size=50)
    assert isinstance(est, ConsistencyEstimator) and not est.training
    assert inference.summary["epochs_trained"] == [3]
    # 5 batches per epoch: validated every 20 epochs (100 steps) and after the last one
    assert len(inference.summary["validation_loss"]) == 1
    assert inference.optimizer_steps == 3 * (270 // 50)
    assert inference.num_discretization_points == est.schedule.s1 + 1


def test_default_budget_is_finite(tiny_builder, monkeypatch):
    import sbi_cmpe.defaults as defaults

    monkeypatch.setattr(defaults, "MAX_STEPS", 20)
    inference, theta, x = make_inference(tiny_builder)
    inference.append_simulations(theta, x).train(training_batch_size=50)
    assert inference.optimizer_steps == 20 + (-20 % 5)  # whole epochs of 5 batches


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


def test_resume_needs_earlier_training(tiny_builder):
    inference, theta, x = make_inference(tiny_builder)
    inference.append_simulations(theta, x)
    with pytest.raises(RuntimeError, match="earlier call"):
        inference.train(resume_training=True)
    inference.train(max_num_epochs=1)
    with pytest.raises(ValueError, match="not both"):
        inference.train(max_num_epochs=2, resume_training=True, retrain_from_scratch=True)


def test_train_without_simulations(tiny_builder):
    with pytest.raises(RuntimeError, match="append_simulations"):
        CMPEInference(
            BoxUniform(-torch.ones(2), torch.ones(2)), density_estimator=tiny_builder
        ).train()


def test_invalid_simulations_are_counted_and_excluded(tiny_builder):
    inference, theta, x = make_inference(tiny_builder)
    x[:3, 0] = float("nan")
    x[3:5, 1] = float("inf")
    with pytest.warns(UserWarning, match="Found 3 simulations with NaN and 2 with infinite"):
        inference.append_simulations(theta, x)
    assert inference.get_simulations()[0].shape[0] == 295


def test_all_invalid_simulations(tiny_builder):
    inference, theta, x = make_inference(tiny_builder)
    with pytest.raises(ValueError, match="All 300 simulations contain NaN"):
        inference.append_simulations(theta, torch.full_like(x, float("nan")))


def test_non_prior_proposal_is_refused(tiny_builder):
    inference, theta, x = make_inference(tiny_builder)
    proposal = BoxUniform(-torch.ones(2), torch.ones(2))
    with pytest.raises(ValueError, match="would need a loss correction"):
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
    inference, _, _ = make_inference(tiny_builder)
    with pytest.raises(ValueError, match=message):
        inference.append_simulations(torch.zeros(theta_shape), torch.zeros(x_shape))


def test_second_append_with_other_x_shape(tiny_builder):
    inference, theta, x = make_inference(tiny_builder)
    inference.append_simulations(theta, x)
    with pytest.raises(ValueError, match="does not match the earlier"):
        inference.append_simulations(theta, torch.zeros(300, 3))


def test_theta_outside_prior_warns(tiny_builder):
    inference, theta, x = make_inference(tiny_builder)
    theta[0] = 10.0
    with pytest.warns(UserWarning, match="1 of 300 parameter sets lie outside"):
        inference.append_simulations(theta, x)


def test_support_check_draws_nothing(tiny_builder):
    inference, theta, x = make_inference(tiny_builder)
    state = torch.get_rng_state()
    inference.append_simulations(theta, x)  # checks theta against the prior's support
    assert torch.equal(torch.get_rng_state(), state)


def test_no_prior_uses_empirical(tiny_builder):
    _, _, theta, x = linear_gaussian_data(2, 300)
    inference = CMPEInference(density_estimator=tiny_builder, show_progress_bars=False)
    inference.append_simulations(theta, x).train(max_num_epochs=1)
    assert inference.build_posterior().sample((5,), x=x[0]).shape == (5, 2)


def test_build_posterior_before_training(tiny_builder):
    inference, theta, x = make_inference(tiny_builder)
    with pytest.raises(RuntimeError, match="call `train\\(\\)` first"):
        inference.append_simulations(theta, x).build_posterior()


def test_trainer_pickles(tiny_builder):
    inference, theta, x = make_inference(tiny_builder)
    inference.append_simulations(theta, x).train(max_num_epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        restored = pickle.loads(pickle.dumps(inference))
    assert restored.optimizer_steps == inference.optimizer_steps
    restored.train(max_num_epochs=2, resume_training=True)
    assert restored.epoch == 2


def test_drop_in_for_npe_arguments(tiny_builder):
    """The arguments an NPE pipeline passes to `train` are accepted."""
    inference, theta, x = make_inference(tiny_builder)
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
    # sbi's truncated-rounds recipe passes these; CMPE's loss needs no correction.
    rounds = dict(
        force_first_round_loss=True, discard_prior_samples=False, calibration_kernel=None
    )
    inference.append_simulations(theta, x).train(max_num_epochs=1, **rounds)
    with pytest.raises(ValueError, match="calibration_kernel"):
        inference.train(max_num_epochs=1, calibration_kernel=lambda x: torch.ones(len(x)))
    with pytest.raises(ValueError, match="discard_prior_samples"):
        inference.train(max_num_epochs=1, discard_prior_samples=True)


def test_train_takes_npes_positional_arguments():
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)

    def positional(function):
        return [p.name for p in inspect.signature(function).parameters.values() if p.kind in kinds]

    npe = [
        name for name in positional(NPE.train) if name not in ("num_atoms", "use_combined_loss")
    ]
    assert positional(CMPEInference.train) == npe


def test_kept_nan_simulations_are_refused_at_training(tiny_builder):
    inference, theta, x = make_inference(tiny_builder)
    x[:5] = float("nan")
    with pytest.warns(UserWarning):
        inference.append_simulations(theta, x, exclude_invalid_x=False)
    with pytest.raises(ValueError, match="5 of 300 simulations have NaN.*exclude_invalid_x=True"):
        inference.train(max_num_epochs=1)


def test_a_continued_network_keeps_its_split_on_the_same_simulations(tiny_builder):
    """No simulation it trained on is held out when it trains again on the same data; new
    simulations give a new split of all of them."""
    inference, theta, x = make_inference(tiny_builder)
    inference.append_simulations(theta, x).train(max_num_epochs=1)
    held_out = inference.val_indices.clone()
    inference.train(max_num_epochs=1)
    assert torch.equal(inference.val_indices, held_out)
    inference.train(max_num_epochs=1, validation_fraction=0.2)  # another split size
    assert len(inference.val_indices) == 60
    inference.append_simulations(theta[:100], x[:100]).train(max_num_epochs=1)
    assert len(inference.val_indices) == 40  # a new split of all 400
    # Simulations appended before a resumed run (which keeps its split of 400) are used by
    # the next run.
    inference.append_simulations(theta[:10], x[:10]).train(max_num_epochs=2, resume_training=True)
    inference.train(max_num_epochs=1)
    assert len(inference.train_indices) + len(inference.val_indices) == 410


def test_validation_score_is_an_energy_score(tiny_builder):
    """Lower for draws centred on the truth than for draws shifted away from it."""
    inference, theta, x = make_inference(tiny_builder)
    inference.append_simulations(theta, x).train(max_num_epochs=1)
    net = inference._neural_net
    val_theta, val_x = inference._validation_data()
    good = inference._validation_loss(val_theta, val_x)
    far = inference._validation_loss(val_theta + 10 * net.theta_std, val_x)
    assert good < far
    assert good == inference._validation_loss(val_theta, val_x)  # fixed noise


def test_default_budget_follows_theta_not_x(tiny_builder, monkeypatch):
    """Two parameters and seven-dimensional x: the budget of up to 2 parameters."""
    import sbi_cmpe.defaults as defaults

    monkeypatch.setattr(defaults, "MAX_STEPS", 20)
    monkeypatch.setattr(defaults, "HIGH_DIM_MAX_STEPS", 40)
    prior, _, theta, _ = linear_gaussian_data(2, 300)
    x = torch.cat([theta, torch.randn(300, 5)], dim=1)  # counting x would give 40 steps
    inference = CMPEInference(prior, density_estimator=tiny_builder, show_progress_bars=False)
    inference.append_simulations(theta, x).train(training_batch_size=50)
    assert inference.optimizer_steps == 20


def test_clip_max_norm_must_be_positive(tiny_builder):
    inference, theta, x = make_inference(tiny_builder)
    with pytest.raises(ValueError, match="clip_max_norm must be a finite positive number"):
        inference.append_simulations(theta, x).train(max_num_epochs=1, clip_max_norm=0)


def test_custom_loader_arguments_train_the_same_network(tiny_builder):
    weights = []
    for kwargs in (None, {"num_workers": 0}):
        torch.manual_seed(0)
        inference, theta, x = make_inference(tiny_builder)
        inference.append_simulations(theta, x)
        est = inference.train(max_num_epochs=3, training_batch_size=50, dataloader_kwargs=kwargs)
        weights.append(torch.cat([p.detach().flatten() for p in est.parameters()]))
    assert torch.equal(*weights)


def test_gradient_clipping_changes_the_run(tiny_builder):
    weights = []
    for clip in (None, 1e-3):
        torch.manual_seed(0)
        inference, theta, x = make_inference(tiny_builder)
        inference.append_simulations(theta, x)
        est = inference.train(max_num_epochs=3, training_batch_size=50, clip_max_norm=clip)
        weights.append(torch.cat([p.detach().flatten() for p in est.parameters()]))
    assert not torch.allclose(*weights)


def test_default_budget_of_higher_dimensions_counts_all_simulations(tiny_builder, monkeypatch):
    """Four parameters, 300 simulations (270 for training): 1 step per simulation."""
    import sbi_cmpe.defaults as defaults

    monkeypatch.setattr(defaults, "STEPS_PER_SIMULATION", 1)
    inference, theta, x = make_inference(tiny_builder, dim=4)
    inference.append_simulations(theta, x).train(training_batch_size=50)
    assert inference.optimizer_steps == 300  # 60 epochs of 5 batches (270 would give 54)
    # New simulations do not change the budget of a resumed run, which keeps its split.
    inference.append_simulations(theta[:100], x[:100])
    inference.train(training_batch_size=50, resume_training=True)
    assert inference.optimizer_steps == 300
