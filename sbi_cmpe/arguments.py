"""Checks of the scalar arguments of the public entry points, with errors that name them.

Each check returns the value (converted where that is harmless, e.g. a numpy integer to
`int`) or raises a `TypeError` (wrong type) or `ValueError` (wrong value) whose message
starts with the argument's name, so that bad input never reaches torch or sbi.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Optional, Union

import torch

__all__ = [
    "float_tensor",
    "positive_int",
    "steps_or_auto",
    "non_negative_int",
    "positive_float",
    "open_fraction",
    "fraction",
    "sample_shape",
]


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def float_tensor(name: str, value: Any) -> torch.Tensor:
    """`value` (a tensor, numpy array or nested list of numbers) as a float32 tensor."""
    try:
        return torch.as_tensor(value, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(
            f"{name} must be a tensor, numpy array or nested list of numbers, got "
            f"{type(value).__name__}."
        ) from err


def positive_int(name: str, value: Any, allow_none: bool = False) -> Optional[int]:
    """`value` as an `int` >= 1 (or `None` where allowed)."""
    if value is None and allow_none:
        return None
    if not _is_int(value):
        raise TypeError(f"{name} must be an int >= 1, got {value!r}.")
    if value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}.")
    return int(value)


def steps_or_auto(name: str, value: Any, allow_none: bool = False) -> Union[int, str, None]:
    """`value` as an `int` >= 1, or the string `"auto"` (or `None` where allowed)."""
    if isinstance(value, str):
        if value != "auto":
            raise ValueError(f'{name} must be an int >= 1 or "auto", got {value!r}.')
        return value
    return positive_int(name, value, allow_none)


def non_negative_int(name: str, value: Any) -> int:
    """`value` as an `int` >= 0."""
    if not _is_int(value):
        raise TypeError(f"{name} must be an int >= 0, got {value!r}.")
    if value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}.")
    return int(value)


def positive_float(name: str, value: Any, allow_none: bool = False) -> Optional[float]:
    """`value` as a finite `float` > 0 (or `None` where allowed)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive number, got {value!r}.")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite positive number, got {value!r}.")
    return float(value)


def open_fraction(name: str, value: Any) -> float:
    """`value` as a `float` strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number between 0 and 1, got {value!r}.")
    if not 0 < value < 1:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {value!r}.")
    return float(value)


def fraction(name: str, value: Any, allow_none: bool = False) -> Optional[float]:
    """`value` as a `float` in `[0, 1)` (or `None` where allowed)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in [0, 1), got {value!r}.")
    if not 0 <= value < 1:
        raise ValueError(f"{name} must lie in [0, 1), got {value!r}.")
    return float(value)


def sample_shape(value: Any) -> torch.Size:
    """A `sample_shape` as a `torch.Size`: a sequence of ints >= 0, or one int."""
    if _is_int(value):
        value = (value,)
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(
            f"sample_shape must be a tuple of ints (or one int), got {value!r}."
        ) from None
    if not all(_is_int(n) for n in items):
        raise TypeError(f"sample_shape must be a tuple of ints (or one int), got {value!r}.")
    if any(n < 0 for n in items):
        raise ValueError(f"sample_shape must not have negative sizes, got {items}.")
    return torch.Size(int(n) for n in items)
