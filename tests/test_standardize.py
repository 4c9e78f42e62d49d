"""Standardization of theta around a centre linear in x (`sbi_cmpe.standardize`)."""

import copy

import pytest
import torch

from sbi_cmpe import consistency_nn
from sbi_cmpe.standardize import MAX_REGRESSORS, linear_z_score


def _linear_data(num: int = 4_000):
    """theta (N, 3) with x = theta A + noise of scales 0.05, 0.5, 2 plus a constant column."""
    torch.manual_seed(0)
    theta = torch.randn(num, 3) * torch.tensor([1.0, 2.0, 0.5]) + 3.0
    noise = torch.randn(num, 3) * torch.tensor([0.05, 0.5, 2.0])
    x = torch.cat([theta[:, [1, 0, 2]] + noise, torch.ones(num, 1)], 1)  # (N, 4)
    return theta, x


def test_linear_z_score_fits_the_conditional_mean_and_residual_scale():
    theta, x = _linear_data()
    mean, std, slope, x_center = linear_z_score(theta, x)
    # theta_d ~ N(3, v_d) seen in one entry of x with noise s_d: residual variance
    # 1 / (1 / v_d + 1 / s_d^2).
    prior_var, noise_sd = torch.tensor([1.0, 4.0, 0.25]), torch.tensor([0.5, 0.05, 2.0])
    expected = 1 / (1 / prior_var + 1 / noise_sd**2)
    assert torch.allclose(std, expected.sqrt(), rtol=0.05)
    center = mean + (x - x_center) @ slope  # (N, 3)
    residual = theta - center
    assert residual.mean(0).abs().max() < 1e-3
    assert torch.allclose(residual.std(0), std, rtol=1e-3)
    assert slope.shape == (4, 3) and x_center.shape == (4,)
    assert torch.isfinite(slope).all()  # the constant column gets no weight, not NaN


def test_linear_z_score_gives_no_weight_to_a_constant_up_to_rounding():
    theta, x = _linear_data()
    x[:, 3] = 5.0 + 1e-7 * torch.randn(len(x))  # a constant column with rounding noise
    _, std, slope, _ = linear_z_score(theta, x)
    assert torch.all(slope[3] == 0)
    assert torch.allclose(std, linear_z_score(theta, x[:, :3])[1], rtol=1e-4)


def test_linear_z_score_declines_too_few_simulations_or_too_many_regressors():
    theta, x = _linear_data(9)
    assert linear_z_score(theta, x) is None  # 9 < 10 (4 + 1)
    wide = torch.randn(2 * MAX_REGRESSORS + 10, MAX_REGRESSORS + 1)
    assert linear_z_score(torch.randn(len(wide), 2), wide) is None


def test_linear_z_scoring_shifts_draws_with_x():
    theta, x = _linear_data(500)
    estimator = consistency_nn(z_score_theta="linear", hidden_features=16, num_layers=1)(theta, x)
    constant = copy.deepcopy(estimator)
    constant._buffers["theta_slope"] = None  # as an estimator pickled before the slope
    constant._buffers["x_center"] = None
    condition = x[:5]
    shift = (condition - estimator.x_center) @ estimator.theta_slope  # (5, 3)
    draws = estimator.sample((7,), condition, generator=torch.Generator().manual_seed(1))
    base = constant.sample((7,), condition, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(draws, base + shift, atol=1e-5)
    loss = estimator.loss(theta[:5], condition, generator=torch.Generator().manual_seed(2))
    same = constant.loss(theta[:5] - shift, condition, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(loss, same, atol=1e-6)


def test_linear_z_scoring_log_prob_is_that_of_the_shifted_parameters():
    theta, x = _linear_data(500)
    build = consistency_nn(z_score_theta="linear", hidden_features=16, num_layers=1, density=True)
    estimator = build(theta, x)
    constant = copy.deepcopy(estimator)
    constant._buffers["theta_slope"] = None
    constant._buffers["x_center"] = None
    condition = x[:4]
    shift = (condition - estimator.x_center) @ estimator.theta_slope  # (4, 3)
    points = theta[:8].reshape(2, 4, 3)
    log_prob = estimator.log_prob(points, condition)
    assert torch.allclose(log_prob, constant.log_prob(points - shift, condition), atol=1e-4)


def test_linear_z_scoring_falls_back_to_independent():
    theta, x = _linear_data(8)  # too few simulations for 4 regressors
    build = consistency_nn(z_score_theta="linear", hidden_features=8, num_layers=1)
    with pytest.warns(UserWarning, match="z-scored independently"):
        estimator = build(theta, x)
    assert estimator.theta_slope is None
    assert torch.allclose(estimator.theta_mean, theta.mean(0))


def test_estimator_refuses_a_slope_of_the_wrong_shape():
    theta, x = _linear_data(50)
    build = consistency_nn(hidden_features=8, num_layers=1)
    net = build(theta, x).net
    from sbi_cmpe.estimator import ConsistencyEstimator

    with pytest.raises(ValueError, match="theta_slope must have shape"):
        ConsistencyEstimator(
            net, theta[0].shape, x[0].shape, theta_slope=torch.zeros(3, 3), x_center=torch.zeros(3)
        )
    with pytest.raises(ValueError, match="together"):
        ConsistencyEstimator(net, theta[0].shape, x[0].shape, theta_slope=torch.zeros(4, 3))


@pytest.mark.slow
def test_linear_z_scoring_resolves_narrow_dimensions():
    """A 16-dimensional linear Gaussian whose posterior standard deviations span 0.05 to 0.7:
    with the linear z-score every marginal has the exact posterior's width (the default
    z-scoring leaves the narrowest several times too wide here)."""
    from sbi.simulators.linear_gaussian import (
        linear_gaussian,
        true_posterior_linear_gaussian_mvn_prior,
    )
    from torch.distributions import MultivariateNormal

    from sbi_cmpe import CMPEInference

    dim = 16
    cov = torch.diag(torch.logspace(-1.3, 0.0, dim) ** 2)  # noise sd 0.05 to 1
    shift, prior = torch.zeros(dim), MultivariateNormal(torch.zeros(dim), torch.eye(dim))
    torch.manual_seed(0)
    theta = prior.sample((3_000,))
    x = linear_gaussian(theta, shift, cov)
    x_o = linear_gaussian(prior.sample((1,)), shift, cov)
    exact = true_posterior_linear_gaussian_mvn_prior(x_o, shift, cov, shift, torch.eye(dim))
    sd = exact.covariance_matrix.diagonal().sqrt()  # (D,)
    torch.manual_seed(1)
    inference = CMPEInference(
        prior, density_estimator=consistency_nn(z_score_theta="linear"), show_progress_bars=False
    )
    inference.append_simulations(theta, x).train(max_num_epochs=100)
    draws = inference.build_posterior().sample((5_000,), x=x_o, show_progress_bars=False)
    ratio = draws.std(0) / sd
    assert ratio.min() > 0.8 and ratio.max() < 1.25, ratio
    assert ((draws.mean(0) - exact.mean.reshape(-1)) / sd).abs().max() < 0.3
