"""Benchmark tasks: sbibm's, or any sbi-style prior and simulator."""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, TypeVar

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

__all__ = [
    "Task", "EmbeddingFactory", "SBIBM_TASKS", "OWN_TASKS", "TASKS", "box_gaussian", "load_task",
    "seeded",
]  # fmt: skip

# sbibm 1.0.6 tasks that run without Julia.
SBIBM_TASKS = (
    "two_moons",
    "gaussian_linear",
    "gaussian_linear_uniform",
    "gaussian_mixture",
    "slcp",
    "slcp_distractors",
    "bernoulli_glm",
    "bernoulli_glm_raw",
)
# Tasks of this package with references computed here (not sbibm's).
OWN_TASKS = ("box_gaussian",)
TASKS = SBIBM_TASKS + OWN_TASKS
# Builds the embedding net of x that every method of a task gets.
EmbeddingFactory = Callable[[], nn.Module]
T = TypeVar("T")


def seeded(seed: int, fn: Callable[[], T]) -> T:
    """`fn()` with torch's generator seeded by `seed`, leaving the global state as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return fn()


@dataclass
class Task:
    """A prior, a simulator, observations and reference posterior samples.

    Arguments:
        name: Name used in file names and tables.
        prior: A torch distribution over theta of shape `(D,)`.
        simulator: Batched simulator `theta (N, D) -> x (N, *x_shape)`.
        observation: `i -> x_o` of shape `(1, *x_shape)`, for `i = 1, 2, ...`.
        reference_samples: `(i, n) -> (n, D)` samples of the true posterior given
            observation `i`; `None` when there is no reference (no C2ST then).
        num_observations: Number of observations available.
        embedding: Builds the embedding net of x that every method then uses, with x
            entering it unstandardized; `None` for sbi's and CMPE's default (z-scored x).
    """

    name: str
    prior: Distribution
    simulator: Callable[[Tensor], Tensor]
    observation: Callable[[int], Tensor]
    reference_samples: Optional[Callable[[int, int], Tensor]]
    num_observations: int = 10
    embedding: Optional[EmbeddingFactory] = None


@contextlib.contextmanager
def _torch_load_allowing_pickles() -> Iterator[None]:
    """Let sbibm load its own pickled files under torch >= 2.6.

    torch 2.6 made `torch.load(weights_only=True)` the default; sbibm 1.0.6's
    slcp_distractors stores a pickled mixture model, which that refuses. Only files
    shipped inside the installed sbibm package are loaded while this is active.
    """
    original = torch.load

    @functools.wraps(original)
    def load(*args, **kwargs):
        kwargs.setdefault("weights_only", False)
        return original(*args, **kwargs)

    torch.load = load
    try:
        yield
    finally:
        torch.load = original


def _mixture_per_simulation(params: dict) -> Callable[[Tensor], Tensor]:
    """gaussian_mixture's simulator with one mixture component drawn per simulation.

    sbibm 1.0.6 draws a single component per simulator call, so a batch of N parameters
    shares one noise scale, while its reference posteriors use the mixture likelihood
    `p(x | theta) = sum_k w_k N(x; f_k theta, s_k^2 I)` for every simulation. This draws
    `k` for each row of `theta` `(N, D)`, as that likelihood says.
    """
    weights, factors, scales = (
        params["mixture_weights"],
        params["mixture_locs_factor"],
        params["mixture_scales"],
    )

    def simulate(theta: Tensor) -> Tensor:
        k = torch.multinomial(weights, len(theta), replacement=True)  # (N,)
        noise = torch.randn_like(theta)  # (N, D)
        return factors[k, None] * theta + scales[k, None] * noise

    return simulate


def box_gaussian(dim: int = 10, bound: float = 2.0, num_observations: int = 10) -> Task:
    r"""A bounded-prior check with an exact reference: uniform prior, Gaussian likelihood.

    $\theta \sim U[-b, b]^D$ and $x = \theta + \sigma \odot z$, $z \sim N(0, I_D)$, with
    noise scales $\sigma_d$ log-spaced from 0.05 to 1.0, so that some dimensions are
    resolved by the data and others are cut by the box. The posterior is
    $N(\theta; x, \mathrm{diag}(\sigma^2))$ restricted to the box, a product of truncated
    normals: the reference draws each dimension by rejection from its normal.

    Arguments:
        dim: Number of parameters D.
        bound: Half-width b of the box.
        num_observations: Number of observations; observation `i` is simulated from a
            prior draw with a generator seeded by `i` (independent of any training seed).

    Returns:
        The task `box_gaussian` (or `box_gaussian_d{dim}` for another `dim`).
    """
    from sbi.utils import BoxUniform

    prior = BoxUniform(-bound * torch.ones(dim), bound * torch.ones(dim))
    scales = torch.logspace(math.log10(0.05), 0.0, dim)  # (D,)

    def simulate(theta: Tensor) -> Tensor:
        return theta + scales * torch.randn_like(theta)  # (N, D)

    def observation(i: int) -> Tensor:
        generator = torch.Generator().manual_seed(i)
        theta = (2 * torch.rand(1, dim, generator=generator) - 1) * bound  # (1, D)
        return theta + scales * torch.randn(1, dim, generator=generator)

    def reference(i: int, n: int) -> Tensor:
        x_o = observation(i)[0]  # (D,)
        generator = torch.Generator().manual_seed(10_000 + i)
        columns = []
        for d in range(dim):  # independent truncated normals, each by rejection
            kept = torch.empty(0)
            while len(kept) < n:
                draws = x_o[d] + scales[d] * torch.randn(4 * n, generator=generator)
                kept = torch.cat([kept, draws[draws.abs() <= bound]])
            columns.append(kept[:n])
        return torch.stack(columns, dim=1)  # (n, D)

    name = "box_gaussian" if dim == 10 else f"box_gaussian_d{dim}"
    return Task(name, prior, simulate, observation, reference, num_observations)


def load_task(name: str) -> Task:
    """Load a task by name: sbibm's (needs the `benchmark` extra) or one of `OWN_TASKS`."""
    if name == "box_gaussian":
        return box_gaussian()
    if name not in SBIBM_TASKS:
        raise ValueError(f"Unknown task {name!r}; tasks here: {', '.join(TASKS)}.")
    try:
        import sbibm
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("The benchmark needs sbibm: pip install 'sbi-cmpe[benchmark]'.") from err
    with _torch_load_allowing_pickles():
        task = sbibm.get_task(name)
        simulator = task.get_simulator()
    prior = task.get_prior_dist()

    def simulate(theta: Tensor) -> Tensor:
        with _torch_load_allowing_pickles():
            return simulator(theta)

    if name == "gaussian_mixture":
        simulate = _mixture_per_simulation(task.simulator_params)

    def reference(i: int, n: int) -> Tensor:
        samples = task.get_reference_posterior_samples(num_observation=i)
        if n > len(samples):
            raise ValueError(f"{name} has {len(samples)} reference samples, {n} requested.")
        return samples[:n]

    return Task(
        name=name,
        prior=prior,
        simulator=simulate,
        observation=lambda i: task.get_observation(num_observation=i),
        reference_samples=reference,
        num_observations=task.num_observations,
    )
