"""Shared fixtures: seeding, one torch thread, and small simulators."""

import pytest
import torch
from sbi.simulators.linear_gaussian import linear_gaussian
from sbi.utils import BoxUniform


def pytest_configure(config):
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def linear_gaussian_data(num_dim: int, num_simulations: int, prior=None):
    """Prior, simulator and simulations of sbi's linear Gaussian test problem."""
    shift = torch.ones(num_dim)
    cov = 0.3 * torch.eye(num_dim)
    if prior is None:
        prior = BoxUniform(-2 * torch.ones(num_dim), 2 * torch.ones(num_dim))

    def simulator(theta):
        return linear_gaussian(theta, shift, cov)

    theta = prior.sample((num_simulations,))
    return prior, simulator, theta, simulator(theta)


@pytest.fixture
def tiny_builder():
    """A small network, for tests of shapes and plumbing (not accuracy)."""
    from sbi_cmpe import consistency_nn

    return consistency_nn(hidden_features=32, num_layers=1, time_embedding_dim=8)


def make_inference(builder, n=300, dim=2, **kwargs):
    """A `CMPEInference` on the linear Gaussian problem, with its simulations (not appended)."""
    from sbi_cmpe import CMPEInference

    prior, _, theta, x = linear_gaussian_data(dim, n)
    inference = CMPEInference(prior, density_estimator=builder, show_progress_bars=False, **kwargs)
    return inference, theta, x


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
