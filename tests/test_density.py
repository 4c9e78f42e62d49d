"""The density of a consistency estimator with a denoiser head (`sbi_cmpe.density`).

Fast tests give the estimator the exact denoiser of a Gaussian posterior, whose
probability-flow density is known in closed form, so that they test the ODE, its base
distribution and the z-scoring without training; the slow tests train and compare with the
analytic posterior of sbi's linear Gaussian task.
"""

import math
import pickle
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.distributions import MultivariateNormal

from sbi_cmpe import (
    CMPEInference,
    ConsistencyEstimator,
    ConsistencyPosterior,
    NoiseSchedule,
    consistency_nn,
)
from sbi_cmpe.density import denoiser_scalings


class GaussianDenoiser(nn.Module):
    """A network whose heads are exact for standardized posteriors N(mu(x), s^2 I), with
    mu(x) = x[:, :D] (the embedded x): the denoiser E[theta | theta_t] and the consistency
    map mu + sqrt((s^2 + eps^2) / (s^2 + t^2)) (theta_t - mu), so that `sample` draws the
    density of `log_prob` up to noise of scale eps."""

    def __init__(self, dim: int, s: float):
        super().__init__()
        self.dim, self.s = dim, s
        self.scale = nn.Parameter(torch.ones(()))  # the estimator needs a parameter

    def forward(self, theta_t, x, log_t):
        t = log_t.exp()[:, None]
        mu = x[:, : self.dim]
        denoised = mu + self.s**2 / (self.s**2 + t**2) * (theta_t - mu)
        c_skip, c_out = denoiser_scalings(t)
        head = (denoised - c_skip * theta_t) / c_out
        eps = 1e-3  # the schedule's
        mapped = mu + ((self.s**2 + eps**2) / (self.s**2 + t**2)).sqrt() * (theta_t - mu)
        k_skip, k_out = NoiseSchedule().scalings(t)
        consistency = torch.where(
            k_out > 0, (mapped - k_skip * theta_t) / k_out.clamp_min(1e-12), 0
        )
        return torch.cat([consistency, head], dim=1) * self.scale


def gaussian_estimator(dim, s, mean=0.0, std=1.0):
    return ConsistencyEstimator(
        GaussianDenoiser(dim, s),
        torch.Size([dim]),
        torch.Size([dim]),
        theta_mean=mean,
        theta_std=std,
        density=True,
    )


@pytest.mark.parametrize("dim, s", [(1, 0.5), (2, 0.3), (2, 1.0), (10, 0.5)])
def test_ode_density_of_an_exact_gaussian_denoiser(dim, s):
    """q(theta | x) = N(mean + std * mu, (std * s)^2) in the original units."""
    torch.manual_seed(0)
    mean, std = torch.linspace(-1, 1, dim), torch.linspace(0.5, 2.0, dim)
    estimator = gaussian_estimator(dim, s, mean, std)
    x = torch.randn(3, dim)  # mu of three observations (standardized units)
    truth = MultivariateNormal(mean + std * x, torch.diag((std * s) ** 2))  # batch of 3
    theta = truth.sample((40,))  # (40, 3, dim)
    log_prob = estimator.log_prob(theta, x)
    assert log_prob.shape == (40, 3)
    # Only the ODE solver's tolerance and the base mean D(0, T) (shrunk towards 0 by
    # s^2 / (s^2 + T^2)) stand between the two.
    assert (log_prob - truth.log_prob(theta)).abs().max() < 0.01


def test_hutchinson_estimate_is_unbiased():
    torch.manual_seed(0)
    estimator = gaussian_estimator(10, 0.5)
    x = torch.zeros(1, 10)
    theta = 0.5 * torch.randn(5, 1, 10)
    exact = estimator.log_prob(theta, x, exact=True)
    estimates = torch.stack([estimator.log_prob(theta, x, exact=False) for _ in range(40)])
    spread = estimates.std(0)
    assert spread.min() > 0  # it is an estimate, with one probe per solve
    assert ((estimates.mean(0) - exact).abs() < 4 * spread / math.sqrt(40)).all()


def test_log_prob_shapes_are_checked():
    estimator = gaussian_estimator(2, 0.5)
    with pytest.raises(ValueError, match=r"theta must have shape \(S, B, 2\)"):
        estimator.log_prob(torch.zeros(4, 2), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="2 batches of theta but 1 conditions"):
        estimator.log_prob(torch.zeros(4, 2, 2), torch.zeros(1, 2))


def test_estimators_without_the_head_say_how_to_get_one():
    estimator = consistency_nn(hidden_features=8, num_layers=1)(
        torch.randn(20, 2), torch.randn(20, 2)
    )
    assert not estimator.density
    with pytest.raises(NotImplementedError, match=r"consistency_nn\(density=True\)"):
        estimator.log_prob(torch.zeros(3, 1, 2), torch.zeros(1, 2))
    path = Path(__file__).parent / "data" / "posterior_0.2.0.dev0.pkl"
    with open(path, "rb") as f:
        old = pickle.load(f)
    assert not old.has_density
    for call in (
        lambda: old.log_prob(torch.zeros(3, 2), x=torch.zeros(2)),
        lambda: old.log_prob_batched(torch.zeros(3, 1, 2), x=torch.zeros(1, 2)),
        lambda: old.potential(torch.zeros(3, 2), x=torch.zeros(2)),
        lambda: old.map(),
    ):
        with pytest.raises(NotImplementedError, match="density=True"):
            call()


@pytest.mark.parametrize("model", ["mlp", "ada_mlp"])
def test_denoiser_head_trains_and_leaves_sampling_to_the_consistency_head(model):
    torch.manual_seed(0)
    theta, x = torch.randn(64, 3), torch.randn(64, 4)
    build = consistency_nn(model=model, hidden_features=16, num_layers=1, density=True)
    estimator = build(theta, x)
    out = estimator.net(theta, estimator.embedding_net(x), torch.zeros(64))
    assert out.shape == (64, 6)
    loss = estimator.loss(theta, x)
    assert loss.shape == (64,) and torch.isfinite(loss).all()
    loss.mean().backward()
    assert all(p.grad is not None for p in estimator.net.parameters() if p.requires_grad)
    generator = torch.Generator().manual_seed(3)
    draws = estimator.sample((5,), x[:2], generator=generator)
    assert draws.shape == (5, 2, 3) and torch.isfinite(draws).all()
    assert estimator.log_prob(draws, x[:2]).shape == (5, 2)


@pytest.mark.parametrize("model", ["mlp", "ada_mlp"])
def test_density_ode_without_gradients_equals_the_full_network(model, monkeypatch):
    """Without gradients the ODE's velocity computes x's and t's terms once per call
    (`shared_condition_net`); with them (`map`, HMC) it runs the full network. Both are the
    same velocity, for several x at once, at every noise level."""
    import sbi_cmpe.density as density

    torch.manual_seed(1)
    theta, x = torch.randn(64, 2), torch.randn(64, 3)
    estimator = consistency_nn(model=model, hidden_features=16, num_layers=2, density=True)(
        theta, x
    )
    for p in estimator.net.parameters():  # a network away from its initialization
        p.data.add_(0.1 * torch.randn_like(p))
    shared_calls = []
    original = density.shared_condition_net
    monkeypatch.setattr(
        density, "shared_condition_net", lambda *a: shared_calls.append(1) or original(*a)
    )
    conditions, num = torch.randn(3, 3), 4
    with torch.no_grad():
        shared = density._flow(estimator, conditions, num, True, 1e-4, 1e-4).transform.f
    assert len(shared_calls) == 1
    full = density._flow(estimator, conditions, num, True, 1e-4, 1e-4).transform.f
    assert len(shared_calls) == 1
    points = torch.randn(num * 3, 2)  # rows draw-major: row s * 3 + b holds x_b
    for log_t in (math.log(1e-3), -0.5, math.log(10.0)):
        s = torch.tensor(log_t)
        assert torch.allclose(shared(s, points), full(s, points), atol=1e-5)


# ----------------------------------------------------- the posterior and sbi's tools
def gaussian_posterior(prior, s=0.3, x_o=(0.5, -0.2)):
    """A posterior whose density is N(x_o, s^2 I) exactly (its sampler is not trained)."""
    posterior = ConsistencyPosterior(gaussian_estimator(2, s), prior)
    return posterior.set_default_x(torch.tensor(x_o))


GAUSSIAN_PRIOR = MultivariateNormal(torch.zeros(2), 4 * torch.eye(2))


def test_posterior_log_prob_and_batched():
    posterior = gaussian_posterior(GAUSSIAN_PRIOR)
    truth = MultivariateNormal(torch.tensor([0.5, -0.2]), 0.09 * torch.eye(2))
    theta = truth.sample((50,))
    log_prob = posterior.log_prob(theta)
    assert log_prob.shape == (50,)
    assert (log_prob - truth.log_prob(theta)).abs().max() < 0.01
    xs = torch.tensor([[0.5, -0.2], [0.0, 1.0]])
    batched = posterior.log_prob_batched(theta[:10, None].expand(10, 2, 2), x=xs)
    assert batched.shape == (10, 2)
    assert torch.allclose(batched[:, 0], log_prob[:10], atol=1e-4)
    assert posterior.potential(theta[:5]).shape == (5,)
    assert "density=True" in repr(posterior)


def test_log_prob_shapes_follow_sbi():
    """`log_prob_batched` reads `(B, D)` as one set per observation, as sbi does;
    `log_prob` refuses more than one leading dimension instead of flattening it."""
    posterior = gaussian_posterior(GAUSSIAN_PRIOR)
    xs = torch.tensor([[0.5, -0.2], [0.0, 1.0]])
    theta = torch.tensor([[0.4, -0.1], [0.1, 0.9]])  # (B, D)
    batched = posterior.log_prob_batched(theta, x=xs)
    assert batched.shape == (1, 2)
    assert torch.allclose(batched, posterior.log_prob_batched(theta[None], x=xs))
    with pytest.raises(ValueError, match="log_prob_batched"):
        posterior.log_prob(torch.zeros(2, 3, 2))


def test_density_integrates_to_one_on_a_grid():
    posterior = gaussian_posterior(GAUSSIAN_PRIOR)
    u = torch.linspace(-1.5, 1.5, 121)
    grid = torch.stack(torch.meshgrid(u + 0.5, u - 0.2, indexing="ij"), -1).reshape(-1, 2)
    mass = posterior.log_prob(grid).exp().sum() * (u[1] - u[0]) ** 2
    assert abs(mass.item() - 1) < 0.02


def test_leakage_correction_renormalizes_inside_a_box():
    from sbi.utils import BoxUniform

    torch.manual_seed(0)
    box = BoxUniform(torch.tensor([0.5, -3.0]), torch.tensor([3.0, 3.0]))  # half the mass
    posterior = gaussian_posterior(box, s=1.0, x_o=(0.5, 0.0))
    rate = posterior.leakage_correction(torch.tensor([0.5, 0.0]), num_rejection_samples=20_000)
    assert abs(rate - 0.5) < 0.02  # N(0.5, 1) has half its mass above 0.5
    outside = posterior.log_prob(torch.tensor([[0.0, 0.0]]))
    assert outside.item() == -math.inf
    inside = torch.tensor([[1.0, 0.5]])
    unnormalized = posterior.log_prob(inside, norm_posterior=False)
    assert torch.allclose(posterior.log_prob(inside), unnormalized - math.log(rate))
    assert isinstance(rate, torch.Tensor) and rate.shape == ()  # as sbi's
    chunked = posterior.leakage_correction(
        torch.tensor([0.5, 0.0]),
        num_rejection_samples=20_000,
        rejection_sampling_batch_size=7_000,
        force_update=True,
    )
    assert abs(chunked - 0.5) < 0.02
    params = dict(num_rejection_samples=1_000, rejection_sampling_batch_size=500)
    assert posterior.log_prob(inside, leakage_correction_params=params).shape == (1,)
    with pytest.raises(ValueError, match="one observation"):
        posterior.leakage_correction(torch.zeros(2, 2))


def test_map_climbs_to_the_mode():
    torch.manual_seed(0)
    posterior = gaussian_posterior(GAUSSIAN_PRIOR)
    mode = posterior.map(num_iter=100, num_to_optimize=4, num_init_samples=200)
    assert mode.shape == (1, 2)
    assert (mode - torch.tensor([0.5, -0.2])).abs().max() < 0.05


def test_importance_sampling_with_it_as_proposal():
    """Weights of another Gaussian target move the proposal's draws to the target's mean."""
    from sbi.inference import ImportanceSamplingPosterior

    torch.manual_seed(0)
    proposal = gaussian_posterior(GAUSSIAN_PRIOR, s=0.4)
    target = gaussian_posterior(GAUSSIAN_PRIOR, s=0.3, x_o=(0.7, -0.1))
    importance = ImportanceSamplingPosterior(
        target.potential_fn, proposal=proposal, method="importance"
    )
    draws, log_weights = importance.sample((4000,), x=target.default_x, show_progress_bars=False)
    weights = (log_weights - log_weights.max()).exp()
    mean = (weights[:, None] * draws).sum(0) / weights.sum()
    assert (draws.mean(0) - torch.tensor([0.5, -0.2])).abs().max() < 0.03  # the proposal
    assert (mean - torch.tensor([0.7, -0.1])).abs().max() < 0.03  # the target


def test_sample_ode_draws_the_density_of_log_prob():
    torch.manual_seed(0)
    posterior = gaussian_posterior(GAUSSIAN_PRIOR, s=0.3)
    draws = posterior.sample_ode((2000,))
    assert draws.shape == (2000, 2)
    assert (draws.mean(0) - torch.tensor([0.5, -0.2])).abs().max() < 0.03
    assert (draws.std(0) - 0.3).abs().max() < 0.02


@pytest.mark.slow
def test_mcmc_on_its_potential():
    from sbi.inference import MCMCPosterior

    torch.manual_seed(0)
    posterior = gaussian_posterior(GAUSSIAN_PRIOR)
    x_o = posterior.default_x
    # Each potential of one point is an ODE solve: a short run of one chain shows it works.
    mcmc = MCMCPosterior(
        posterior.potential_fn,
        proposal=posterior,
        method="slice_np_vectorized",
        num_chains=1,
        warmup_steps=2,
        thin=1,
        init_strategy="proposal",
    )
    chains = mcmc.sample((3,), x=x_o, show_progress_bars=False)
    assert chains.shape == (3, 2) and torch.isfinite(chains).all()


def test_truncated_prior_is_a_proposal_and_a_posterior_is_not():
    from sbi.utils import BoxUniform, RestrictedPrior, get_density_thresholder

    torch.manual_seed(0)
    prior = BoxUniform(-2 * torch.ones(2), 2 * torch.ones(2))
    posterior = gaussian_posterior(prior)
    accept = get_density_thresholder(posterior, quantile=1e-3, num_samples_to_estimate_support=500)
    truncated = RestrictedPrior(prior, accept, posterior=posterior, sample_with="rejection")
    theta = truncated.sample((50,), show_progress_bars=False, print_rejected_frac=False)
    assert accept(theta).all()
    inference = CMPEInference(prior, density_estimator=consistency_nn(hidden_features=8))
    inference.append_simulations(theta, theta + 0.1, proposal=truncated)
    with pytest.raises(ValueError, match="would need a loss correction"):
        inference.append_simulations(theta, theta + 0.1, proposal=posterior)
    other = RestrictedPrior(BoxUniform(-torch.ones(2), torch.ones(2)), accept)
    with pytest.raises(ValueError, match="truncates another prior"):
        inference.append_simulations(theta, theta + 0.1, proposal=other)


def trained_on_linear_gaussian(dim: int) -> tuple:
    """CMPE with a density trained on 20,000 simulations of sbi's linear Gaussian (Gaussian
    prior, shift 1, likelihood covariance 0.3 I), seed 0, in the order of
    `benchmarks/scripts/density_accuracy.py`, so that it is that script's seed-0 run.

    Returns:
        The posterior with default x_o = (0.5, ..., 0.5) and the analytic posterior there.
    """
    from sbi.simulators.linear_gaussian import (
        linear_gaussian,
        true_posterior_linear_gaussian_mvn_prior,
    )

    torch.manual_seed(0)
    prior = MultivariateNormal(torch.zeros(dim), torch.eye(dim))
    shift, cov = torch.ones(dim), 0.3 * torch.eye(dim)
    theta = prior.sample((20_000,))
    x = linear_gaussian(theta, shift, cov)  # before the trainer, as the script simulates
    inference = CMPEInference(
        prior, density_estimator=consistency_nn(density=True), show_progress_bars=False
    )
    inference.append_simulations(theta, x).train()
    x_o = torch.full((1, dim), 0.5)
    posterior = inference.build_posterior().set_default_x(x_o)
    truth = true_posterior_linear_gaussian_mvn_prior(
        x_o, shift, cov, torch.zeros(dim), torch.eye(dim)
    )
    return posterior, truth


@pytest.mark.slow
def test_trained_density_against_the_analytic_posterior():
    """sbi's linear Gaussian in 2-d with a Gaussian prior, 20,000 simulations (the default
    budget), against its analytic posterior at x_o = 0.5; the run of seed 0 of
    `benchmarks/scripts/density_accuracy.py --num-simulations 20000 --map`.

    `log_prob`: a mean absolute error below 0.12 nats over posterior draws. Three training
    seeds gave 0.080-0.100 (`benchmarks/density/accuracy_2d_20k.txt`); another machine's
    rounding changes training as another seed does. Every 5,000-simulation run of
    `benchmarks/density/baselines_2d.csv` (0.127-0.203, an earlier version) would fail it:
    there the denoiser is the limit, not the ODE (0.01 nats, above).

    `map`: its point is within 0.01 nats of the highest learned density on a grid around it
    (the solver's error allows no finer check), and the true log density there is within
    0.15 nats of its peak (0.022-0.078 on the three seeds; a posterior draw lies 1 nat below
    the peak on average). The issue's 0.05 from the analytic mode holds for the exact
    denoiser (`test_map_climbs_to_the_mode`); a learned mode moves more, 0.075-0.169 per
    parameter on the three seeds (0.169 on seed 0, where the true log density is only 0.070
    nats lower): the posterior's top is flatter than the network's error."""
    posterior, truth = trained_on_linear_gaussian(dim=2)
    draws = truth.sample((300,))
    error = posterior.log_prob(draws) - truth.log_prob(draws)
    assert error.abs().mean() < 0.12

    mode = posterior.map(num_iter=100, num_to_optimize=4, num_init_samples=300)  # (1, 2)
    offsets = torch.linspace(-0.2, 0.2, 9)  # the true log density drops 0.09 nats at 0.2
    grid = torch.stack(torch.meshgrid(offsets, offsets, indexing="ij"), -1).reshape(-1, 2)
    assert posterior.log_prob(mode) >= posterior.log_prob(mode + grid).max() - 0.01
    assert truth.log_prob(truth.mean) - truth.log_prob(mode) < 0.15


@pytest.mark.slow
def test_trained_density_in_ten_dimensions():
    """sbi's linear Gaussian in 10-d with a Gaussian prior, 20,000 simulations (the default
    budget), against its analytic posterior at x_o = 0.5 (the run of seed 0 of
    `benchmarks/scripts/density_accuracy.py --dim 10 --num-simulations 20000`): a mean
    absolute error of `log_prob` below 0.5 nats over posterior draws, 0.05 nats per parameter
    as the 2-d test's 0.12 is 0.06. Three training seeds gave 0.386-0.397
    (`benchmarks/density/accuracy_10d_20k.txt`); at 5,000 simulations every method measured
    erred by 0.51-0.74 on average (`benchmarks/density/baselines_10d.csv`)."""
    posterior, truth = trained_on_linear_gaussian(dim=10)
    draws = truth.sample((300,))
    error = posterior.log_prob(draws) - truth.log_prob(draws)
    assert error.abs().mean() < 0.5


@pytest.mark.slow
def test_two_truncated_rounds_beat_one_round_on_two_moons():
    """sbi's TSNPE pattern: 500 prior simulations, then 500 from the prior truncated to the
    first posterior's 1e-3 highest-density region, against 1,000 prior simulations (C2ST of
    10,000 draws, observation 1; measured on two seeds in
    `benchmarks/tuning/warm_start/two_cycles/truncated_rounds_default.txt`)."""
    sbibm = pytest.importorskip("sbibm")  # noqa: F841
    from sbi.utils import RestrictedPrior, get_density_thresholder
    from sbi.utils.metrics import c2st

    from sbi_cmpe.benchmark.tasks import load_task

    task = load_task("two_moons")
    x_o, reference = task.observation(1), task.reference_samples(1, 10_000)

    def trainer():
        return CMPEInference(
            task.prior, density_estimator=consistency_nn(density=True), show_progress_bars=False
        )

    torch.manual_seed(0)
    one = trainer()
    theta = task.prior.sample((1000,))
    one.append_simulations(theta, task.simulator(theta)).train()
    single = c2st(one.build_posterior().sample((10_000,), x=x_o), reference).item()

    torch.manual_seed(0)
    rounds = trainer()
    theta = task.prior.sample((500,))
    rounds.append_simulations(theta, task.simulator(theta)).train()
    posterior = rounds.build_posterior().set_default_x(x_o)
    accept = get_density_thresholder(
        posterior, quantile=1e-3, num_samples_to_estimate_support=10_000
    )
    truncated = RestrictedPrior(task.prior, accept, posterior=posterior, sample_with="rejection")
    theta = truncated.sample((500,), show_progress_bars=False, print_rejected_frac=False)
    assert accept(theta).all()
    rounds.append_simulations(theta, task.simulator(theta), proposal=truncated)
    rounds.train(retrain_from_scratch=True)
    two = c2st(rounds.build_posterior().sample((10_000,), x=x_o), reference).item()
    assert two < single


def test_map_keeps_its_best_start_under_a_bounded_prior():
    """A start that no ascent step beats comes back unmoved (sbi 0.27 returns it through the
    inverse of the box's transform, off the posterior: here by 0.23 and 0.08, far more than
    the solver's error in the potentials)."""
    from sbi.utils import BoxUniform

    torch.manual_seed(0)
    box = BoxUniform(-2 * torch.ones(2), 2 * torch.ones(2))
    posterior = gaussian_posterior(box, x_o=(1.5, -1.0))
    mode = torch.tensor([[1.5, -1.0]])
    found = posterior.map(init_method=mode, num_to_optimize=1, num_iter=2, learning_rate=0.0)
    assert torch.allclose(found, mode, atol=1e-5)
