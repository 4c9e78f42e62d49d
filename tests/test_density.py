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

from sbi_cmpe import ConsistencyEstimator, consistency_nn
from sbi_cmpe.consistency import denoiser_scalings


class GaussianDenoiser(nn.Module):
    """A network whose denoiser head is exact for standardized posteriors N(mu(x), s^2 I),
    with mu(x) = x[:, :D] (the embedded x) and the consistency head zero."""

    def __init__(self, dim: int, s: float):
        super().__init__()
        self.dim, self.s = dim, s
        self.unused = nn.Linear(1, 1)  # the estimator needs a parameter

    def forward(self, theta_t, x, log_t):
        t = log_t.exp()[:, None]
        mu = x[:, : self.dim]
        denoised = mu + self.s**2 / (self.s**2 + t**2) * (theta_t - mu)
        c_skip, c_out = denoiser_scalings(t)
        head = (denoised - c_skip * theta_t) / c_out
        return torch.cat([torch.zeros_like(theta_t), head], dim=1)


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
