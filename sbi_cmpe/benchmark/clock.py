"""Wall-clock timing of the benchmark: one call, the best of several, and `sample_batched`."""

from __future__ import annotations

import math
import time
from functools import partial
from typing import Any, Callable, Tuple, TypeVar

import torch

from sbi_cmpe.benchmark.tasks import Task

__all__ = ["timed", "best_of", "time_sample_batched"]

T = TypeVar("T")


def timed(fn: Callable[[], T]) -> Tuple[T, float]:
    """Run `fn` and return its result and wall time in seconds."""
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def best_of(fn: Callable[..., Any], repeats: int, *args: Any, **kwargs: Any) -> float:
    """The least wall time in seconds of `repeats` calls of `fn(*args, **kwargs)`."""
    return min(timed(partial(fn, *args, **kwargs))[1] for _ in range(repeats))


def time_sample_batched(
    posterior: Any, task: Task, num_draws: int, num_x: int, max_time: float
) -> Tuple[float, bool]:
    """Seconds for `num_draws` draws at each of `num_x` prior-predictive x, in one call.

    The x are simulated from prior draws after `torch.manual_seed(0)`, so every method is
    timed on the same x. Prior-support rejection may be slow for some x, so the call has a
    time limit and returns what it drew by then.

    Arguments:
        posterior: An sbi posterior with `sample_batched`.
        task: The task whose prior and simulator make the x.
        num_draws: Draws per x.
        num_x: Number of x.
        max_time: Time limit of the call in seconds.

    Returns:
        The seconds (`inf` when sbi gave up with nothing accepted in time) and whether all
        draws were made.
    """
    torch.manual_seed(0)
    xs = task.simulator(task.prior.sample((num_x,)))
    try:
        samples, seconds = timed(
            lambda: posterior.sample_batched(
                (num_draws,),
                x=xs,
                max_sampling_time=max_time,
                return_partial_on_timeout=True,
                show_progress_bars=False,
            )
        )
    except RuntimeError:  # sbi gives up when nothing is accepted in time
        return math.inf, False
    return seconds, samples.shape[0] == num_draws
