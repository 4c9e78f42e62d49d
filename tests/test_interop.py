"""sbi's analysis and diagnostics tools accept CMPE posteriors."""

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
from sbi.analysis import pairplot
from sbi.diagnostics import check_sbc, check_tarp, run_sbc, run_tarp
from sbi.inference import EnsemblePosterior, MCMCPosterior, infer, simulate_for_sbi
from sbi.inference.potentials import likelihood_estimator_based_potential  # noqa: F401
from sbi.utils.metrics import c2st
from torch.distributions import MultivariateNormal

from sbi_cmpe import CMPEInference, ConsistencyPosterior, consistency_nn
from tests.conftest import linear_gaussian_data

SMALL = dict(hidden_features=64, num_layers=2, time_embedding_dim=16)


@pytest.fixture(scope="module")
def trained():
    """A 2-d linear Gaussian posterior, trained well enough for calibration checks."""
    torch.manual_seed(0)
    prior, simulator, theta, x = linear_gaussian_data(2, 2000)
    inference = CMPEInference(
        prior, density_estimator=consistency_nn(**SMALL), show_progress_bars=False
    )
    inference.append_simulations(theta, x).train(max_num_epochs=60)
    return prior, simulator, inference


def test_infer_method_cmpe():
    torch.manual_seed(0)
    prior, simulator, _, _ = linear_gaussian_data(2, 1)
    posterior = infer(
        simulator,
        prior,
        method="cmpe",
        num_simulations=300,
        init_kwargs=dict(
            density_estimator=consistency_nn(hidden_features=16, num_layers=1),
            show_progress_bars=False,
        ),
        train_kwargs=dict(max_num_epochs=1),
    )
    assert isinstance(posterior, ConsistencyPosterior)
    assert posterior.sample((4,), x=torch.zeros(2), show_progress_bars=False).shape == (4, 2)


@pytest.mark.slow
def test_sbc_and_tarp(trained):
    prior, simulator, inference = trained
    posterior = inference.build_posterior()
    thetas = prior.sample((200,))
    xs = simulator(thetas)
    ranks, dap_samples = run_sbc(
        thetas, xs, posterior, num_posterior_samples=200, show_progress_bar=False
    )
    stats = check_sbc(ranks, prior.sample((200,)), dap_samples, num_posterior_samples=200)
    assert (stats["ks_pvals"] > 0.01).all(), stats
    assert (stats["c2st_ranks"] < 0.65).all(), stats
    ecp, alpha = run_tarp(
        thetas, xs, posterior, num_posterior_samples=200, show_progress_bar=False
    )
    atc, ks_pval = check_tarp(ecp, alpha)
    assert abs(atc) < 0.2 and ks_pval > 0.01, (atc, ks_pval)


def test_pairplot(trained):
    _, _, inference = trained
    samples = inference.build_posterior().sample(
        (500,), x=torch.zeros(2), show_progress_bars=False
    )
    fig, axes = pairplot(samples, points=torch.zeros(1, 2) - 1.0)
    assert axes.shape == (2, 2)
    matplotlib.pyplot.close(fig)


def test_ensemble_of_two(trained):
    prior, _, inference = trained
    first = inference.build_posterior()
    second = inference.build_posterior(num_steps=1)
    ensemble = EnsemblePosterior([first, second])
    s = ensemble.sample((300,), x=torch.zeros(2), show_progress_bars=False)
    assert s.shape == (300, 2)
    assert ensemble.sample_batched((10,), x=torch.zeros(3, 2)).shape == (10, 3, 2)


def test_mcmc_with_cmpe_proposal(trained):
    """MCMC on the analytic likelihood, initialised by resampling CMPE draws."""
    prior, _, inference = trained
    likelihood_cov = 0.3 * torch.eye(2)
    x_o = torch.zeros(1, 2)

    def potential(theta, x_o):
        lik = MultivariateNormal(theta + 1.0, likelihood_cov).log_prob(x_o)
        return lik + prior.log_prob(theta)

    proposal = inference.build_posterior().set_default_x(x_o)
    posterior = MCMCPosterior(
        potential,
        proposal=proposal,
        theta_transform=None,
        method="slice_np_vectorized",
        init_strategy="resample",
        num_chains=4,
        warmup_steps=20,
        thin=1,
    )
    samples = posterior.sample((200,), x=x_o, show_progress_bars=False)
    assert samples.shape == (200, 2) and torch.isfinite(samples).all()
    reference = proposal.sample((200,), show_progress_bars=False)
    assert c2st(samples, reference).item() < 0.75


def test_simulate_for_sbi_with_cmpe_proposal(trained):
    _, simulator, inference = trained
    proposal = inference.build_posterior().set_default_x(torch.zeros(2))
    theta, x = simulate_for_sbi(simulator, proposal, num_simulations=50, show_progress_bar=False)
    assert theta.shape == (50, 2) and x.shape == (50, 2)
