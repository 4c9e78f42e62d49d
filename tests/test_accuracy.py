"""Accuracy against analytic posteriors, in sbi's own test pattern (C2ST, tol 0.1)."""

import pytest
import torch
from sbi.simulators.linear_gaussian import (
    samples_true_posterior_linear_gaussian_uniform_prior,
    true_posterior_linear_gaussian_mvn_prior,
)
from sbi.utils import BoxUniform
from sbi.utils.metrics import c2st
from torch.distributions import MultivariateNormal

from sbi_cmpe import CMPEInference
from tests.conftest import linear_gaussian_data

# Scores are printed (`pytest -s`) so that the closing notes can quote them.
RESULTS = {}


@pytest.mark.slow
@pytest.mark.parametrize("num_dim", [1, 3])
@pytest.mark.parametrize("prior_type", ["gaussian", "uniform"])
def test_c2st_linear_gaussian(num_dim: int, prior_type: str):
    """CMPE's posterior matches the analytic one at the default steps and at 1 step."""
    shift, cov = torch.ones(num_dim), 0.3 * torch.eye(num_dim)
    if prior_type == "gaussian":
        prior = MultivariateNormal(torch.zeros(num_dim), torch.eye(num_dim))
    else:
        prior = BoxUniform(-2 * torch.ones(num_dim), 2 * torch.ones(num_dim))
    prior, _, theta, x = linear_gaussian_data(num_dim, 2500, prior)
    x_o = torch.zeros(1, num_dim)
    if prior_type == "gaussian":
        reference = true_posterior_linear_gaussian_mvn_prior(
            x_o, shift, cov, prior.loc, prior.covariance_matrix
        ).sample((1000,))
    else:
        reference = samples_true_posterior_linear_gaussian_uniform_prior(
            x_o, shift, cov, prior, num_samples=1000
        )

    inference = CMPEInference(prior, show_progress_bars=False)
    inference.append_simulations(theta, x).train(max_num_epochs=150)
    posterior = inference.build_posterior()

    for num_steps in (None, 1):
        samples = posterior.sample((1000,), x=x_o, num_steps=num_steps, show_progress_bars=False)
        score = c2st(samples, reference).item()
        label = f"{num_dim}-d {prior_type}, {num_steps or posterior.num_steps} step(s)"
        RESULTS[label] = score
        print(f"C2ST {label}: {score:.3f}")
        assert 0.4 <= score <= 0.6, f"C2ST {label} = {score:.3f}, outside [0.4, 0.6]"
