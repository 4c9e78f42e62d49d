"""The methods compared: CMPE and sbi's NPE (maf, nsf), FMPE and NPSE at their defaults."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional

from sbi.inference import FMPE, NPE, NPSE
from torch import Tensor
from torch.distributions import Distribution

from sbi_cmpe import CMPEInference

__all__ = ["METHODS", "Trained", "train_method"]


@dataclass
class Trained:
    """A trained posterior with what its training cost."""

    posterior: Any
    train_time_s: float
    epochs: int
    optimizer_steps: int
    calls_per_draw: Optional[int]  # network calls per draw, where known
    sample_kwargs: Dict[str, Any] = field(default_factory=dict)


def _trainer(method: str, prior: Distribution) -> Any:
    if method == "cmpe":
        return CMPEInference(prior, show_progress_bars=False)
    if method in ("npe_maf", "npe_nsf"):
        return NPE(prior, density_estimator=method[4:], show_progress_bars=False)
    if method == "fmpe":
        return FMPE(prior, show_progress_bars=False)
    if method == "npse":
        return NPSE(prior, show_progress_bars=False)
    raise ValueError(f"Unknown method {method!r}; choose from {sorted(METHODS)}.")


METHODS = ("cmpe", "npe_maf", "npe_nsf", "fmpe", "npse")


def train_method(
    method: str,
    prior: Distribution,
    theta: Tensor,
    x: Tensor,
    max_num_epochs: Optional[int] = None,
) -> Trained:
    """Train `method` on `(theta, x)` with sbi's (or our) default settings.

    Arguments:
        method: One of `METHODS`.
        prior: The task's prior.
        theta: Parameters `(N, D)`.
        x: Simulations `(N, *x_shape)`.
        max_num_epochs: Cap on epochs (for smoke runs); `None` keeps the defaults.

    Returns:
        The trained posterior and its cost.
    """
    trainer = _trainer(method, prior)
    kwargs = {} if max_num_epochs is None else {"max_num_epochs": max_num_epochs}
    trainer.append_simulations(theta, x)
    start = time.perf_counter()
    trainer.train(**kwargs)
    seconds = time.perf_counter() - start
    epochs = trainer.summary["epochs_trained"][-1]
    if method == "cmpe":
        steps = trainer._step
    else:
        batch = 200  # sbi's default training_batch_size
        steps = epochs * (len(trainer.train_indices) // batch or 1)
    posterior = trainer.build_posterior()
    calls = posterior.num_steps if method == "cmpe" else (1 if method.startswith("npe") else None)
    return Trained(posterior, seconds, int(epochs), int(steps), calls)


def timed(fn: Callable[[], Tensor]) -> tuple[Tensor, float]:
    """Run `fn` and return its result and wall time in seconds."""
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start
