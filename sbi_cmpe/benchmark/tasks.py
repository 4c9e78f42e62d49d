"""Benchmark tasks: sbibm's, or any sbi-style prior and simulator."""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import torch
from torch import Tensor
from torch.distributions import Distribution

__all__ = ["Task", "SBIBM_TASKS", "load_task"]

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
    """

    name: str
    prior: Distribution
    simulator: Callable[[Tensor], Tensor]
    observation: Callable[[int], Tensor]
    reference_samples: Optional[Callable[[int, int], Tensor]]
    num_observations: int = 10


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


def load_task(name: str) -> Task:
    """Load an sbibm task as a `Task` (needs the `benchmark` extra)."""
    if name not in SBIBM_TASKS:
        raise ValueError(f"Unknown task {name!r}; sbibm tasks here: {', '.join(SBIBM_TASKS)}.")
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
