"""Simulations: checks of new ones (types, dtypes, shapes and values, with messages that name
the problem), of the proposal they came from and of the loader arguments, and their training
batches."""

from __future__ import annotations

import inspect
import warnings
from typing import Any, Optional, Tuple, Union

import numpy as np
import torch
from sbi.utils.restriction_estimator import RestrictedPrior
from sbi.utils.sbiutils import handle_invalid_x, warn_if_invalid_for_zscoring, within_support
from torch import Tensor
from torch.distributions import Distribution
from torch.utils.data import DataLoader, TensorDataset, default_collate

__all__ = [
    "check_finite",
    "check_loader_arguments",
    "check_split",
    "covers_all",
    "check_proposal",
    "checked_simulations",
    "indexed_batches",
    "valid_simulations",
]


def indexed_batches(loader: DataLoader) -> DataLoader:
    """The batches of `loader`, each taken by one indexing of its dataset's tensors.

    sbi's training loaders fetch a batch row by row and stack the rows again, which costs a
    tenth of a small CMPE training step (`benchmarks/TUNING.md#training-speed`). The returned
    loader hands each list of indices of the original loader's `batch_sampler` to the
    `TensorDataset` at once (`batch_size=None`), which indexes each tensor once. Both
    loaders draw the same random numbers, so a seeded run gets the same batches either way.

    Arguments:
        loader: A single-process loader of a `TensorDataset` with the default collation,
            such as the training loader of sbi's `get_dataloaders`.

    Returns:
        A loader of the same batches, as lists `[theta, x, mask]` of tensors.
    """
    if not isinstance(loader.dataset, TensorDataset) or loader.batch_sampler is None:
        raise TypeError("indexed_batches needs a batched DataLoader of a TensorDataset.")
    if loader.num_workers != 0 or loader.collate_fn is not default_collate:
        raise ValueError("indexed_batches needs a DataLoader without workers or collate_fn.")
    return DataLoader(
        loader.dataset, batch_size=None, sampler=loader.batch_sampler, generator=loader.generator
    )


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
    if theta.shape[1] == 0 or x.shape[1:].numel() == 0:
        raise ValueError(
            f"theta and x must have at least one entry per simulation, got shapes "
            f"{tuple(theta.shape)} and {tuple(x.shape)}."
        )
    if len(theta) == 0:
        raise ValueError(
            f"theta and x must hold at least one simulation, got shapes {tuple(theta.shape)} "
            f"and {tuple(x.shape)}."
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


def valid_simulations(
    theta: Tensor,
    x: Tensor,
    exclude_invalid_x: bool,
    prior: Optional[Distribution] = None,
    prior_device: Optional[Union[str, torch.device]] = None,
) -> Tuple[Tensor, Tensor]:
    """Drop simulations with NaN or infinite values, and warn about what looks wrong.

    Counts of NaN and infinite simulations are given in a warning; simulations that
    cannot be z-scored and parameters outside the prior's support warn too.

    Arguments:
        theta: Parameters `(N, D)`, as returned by `checked_simulations`.
        x: Simulations `(N, *x_shape)`.
        exclude_invalid_x: Whether simulations with NaN or infinite values are dropped.
        prior: The prior, for the support check; `None` skips it.
        prior_device: Where the prior's parameters live (sbi's trainers keep the prior
            on the training device); `None` for the device of `theta`.

    Returns:
        The kept `(theta, x)`.
    """
    invalid = ~(torch.isfinite(x.reshape(len(x), -1)).all(dim=1))
    if exclude_invalid_x and invalid.all():
        raise ValueError(
            f"All {len(x)} simulations contain NaN or infinite values; there is nothing to "
            "train on."
        )
    is_valid, num_nans, num_infs = handle_invalid_x(x, exclude_invalid_x)
    if num_nans + num_infs > 0:
        action = (
            "They are excluded from training."
            if exclude_invalid_x
            else "They are kept because exclude_invalid_x=False: training will likely fail."
        )
        warnings.warn(
            f"Found {num_nans} simulations with NaN and {num_infs} with infinite values "
            f"out of {len(x)}. {action}",
            stacklevel=3,
        )
    theta, x = theta[is_valid], x[is_valid]
    warn_if_invalid_for_zscoring(x)
    if prior is not None:
        on_prior_device = theta if prior_device is None else theta.to(prior_device)
        outside = int((~within_support(prior, on_prior_device)).sum())
        if outside:
            warnings.warn(
                f"{outside} of {len(theta)} parameter sets lie outside the prior's support: "
                "were they drawn from the prior?",
                stacklevel=3,
            )
    return theta, x


def check_loader_arguments(dataloader_kwargs: Optional[dict]) -> None:
    """Refuse `dataloader_kwargs` that torch's `DataLoader` would not take."""
    if dataloader_kwargs is None:
        return
    if not isinstance(dataloader_kwargs, dict):
        raise TypeError(f"dataloader_kwargs must be a dict or None, got {dataloader_kwargs!r}.")
    known = set(inspect.signature(DataLoader.__init__).parameters) - {"self", "dataset"}
    unknown = sorted(set(dataloader_kwargs) - known)
    if unknown:
        raise TypeError(
            f"dataloader_kwargs has arguments that DataLoader does not take: {unknown}."
        )


def check_proposal(proposal: Any, prior: Optional[Distribution]) -> None:
    """Refuse proposals other than the prior and truncations of it (sbi's `RestrictedPrior`).

    Arguments:
        proposal: The proposal passed to `append_simulations`.
        prior: The trainer's prior; `None` (an empty prior) accepts any `RestrictedPrior`.
    """
    if proposal is None or proposal is prior:
        return
    if isinstance(proposal, RestrictedPrior):
        if proposal._prior is prior or prior is None:
            return
        raise ValueError(
            "The RestrictedPrior passed as proposal truncates another prior than this "
            "trainer's; build it from the prior given to CMPEInference."
        )
    raise ValueError(
        "CMPEInference trains on theta from the prior or from a truncated prior "
        f"(sbi's RestrictedPrior, as in TSNPE), but a {type(proposal).__name__} was "
        "passed as proposal: training on it would need a loss correction (atomic or "
        "sequential NPE), so the posterior would be silently biased. Pass proposal=None, "
        "a RestrictedPrior, or use sbi's NPE for sequential inference."
    )


def check_finite(x: Tensor) -> None:
    """Refuse simulations with NaN or infinite entries at training (`append_simulations`
    keeps them with `exclude_invalid_x=False`; its theta is finite already).

    Arguments:
        x: The stored simulations `(N, *x_shape)`.

    Raises:
        ValueError: Counting them and saying how to drop them.
    """
    is_valid, _, _ = handle_invalid_x(x, exclude_invalid_x=True)
    if not bool(is_valid.all()):
        raise ValueError(
            f"{int((~is_valid).sum())} of {len(x)} simulations have NaN or infinite entries "
            "(kept by append_simulations(..., exclude_invalid_x=False)); CMPE cannot train "
            "on them. Append them with exclude_invalid_x=True (the default), which drops "
            "them, or remove them."
        )


def covers_all(
    train_indices: Tensor, val_indices: Tensor, num_simulations: int, validation_fraction: float
) -> bool:
    """Whether a train/validation split is one of all `num_simulations` at
    `validation_fraction` (counted as sbi's `get_dataloaders` counts them)."""
    num_train = int((1 - validation_fraction) * num_simulations)
    return (len(train_indices), len(val_indices)) == (num_train, num_simulations - num_train)


def check_split(num_simulations: int, validation_fraction: float) -> None:
    """Refuse a split that leaves fewer than 2 simulations to train on or none to validate.

    Arguments:
        num_simulations: Simulations appended so far.
        validation_fraction: Fraction held out for validation.

    Raises:
        ValueError: Naming both counts and what to change.
    """
    num_train = int((1 - validation_fraction) * num_simulations)
    if num_train < 2 or num_simulations - num_train < 1:
        raise ValueError(
            f"{num_simulations} simulations with validation_fraction={validation_fraction} "
            f"leave {num_train} for training and {num_simulations - num_train} for "
            "validation; training needs at least 2 and validation at least 1: append more "
            "simulations or change validation_fraction."
        )
