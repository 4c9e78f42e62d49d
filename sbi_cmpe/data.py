"""Checks of new simulations: types, dtypes and shapes, with errors that name the problem."""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Distribution

__all__ = ["checked_simulations"]


def _as_float_tensor(name: str, value: Any) -> Tensor:
    """A float32 tensor from a tensor or numpy array of real numbers."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, Tensor):
        raise TypeError(
            f"{name} must be a torch tensor or a numpy array, got {type(value).__name__}."
        )
    if value.dtype != torch.float32:
        if value.is_complex() or value.dtype == torch.bool:
            raise TypeError(f"{name} must hold real numbers, got dtype {value.dtype}.")
        value = value.float()  # float64 and integer simulations are common
    return value


def checked_simulations(
    theta: Any,
    x: Any,
    prior: Optional[Distribution] = None,
    earlier: Optional[Tuple[Tensor, Tensor]] = None,
) -> Tuple[Tensor, Tensor]:
    """Check new simulations against the prior and the simulations stored before.

    Arguments:
        theta: Parameters, `(N, D)`, as a tensor or numpy array.
        x: Simulations, `(N, *x_shape)`, as a tensor or numpy array.
        prior: The prior, for the event shape of theta; `None` skips that check.
        earlier: `(theta, x)` stored before, whose per-row shapes new data must match.

    Returns:
        `(theta, x)` as float32 tensors.
    """
    theta, x = _as_float_tensor("theta", theta), _as_float_tensor("x", x)
    if theta.dim() != 2:
        raise ValueError(f"theta must have shape (N, D), got {tuple(theta.shape)}.")
    if x.dim() < 2:
        raise ValueError(f"x must have shape (N, *x_shape), got {tuple(x.shape)}.")
    if len(theta) != len(x):
        raise ValueError(
            f"theta and x must have the same number of simulations, got "
            f"{len(theta)} parameter sets and {len(x)} simulations."
        )
    if prior is not None:
        event = prior.event_shape
        if event and tuple(theta.shape[1:]) != tuple(event):
            raise ValueError(
                f"theta has {theta.shape[1]} dimensions per parameter set but the "
                f"prior has event shape {tuple(event)}."
            )
    if earlier is not None:
        for name, new, old in (("theta", theta, earlier[0]), ("x", x, earlier[1])):
            if new.shape[1:] != old.shape[1:]:
                raise ValueError(
                    f"{name} of shape {tuple(new.shape[1:])} per simulation does not match "
                    f"the earlier simulations' {tuple(old.shape[1:])}."
                )
    if not torch.isfinite(theta).all():
        raise ValueError("theta contains NaN or infinite values.")
    return theta, x
