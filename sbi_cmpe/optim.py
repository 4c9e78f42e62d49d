"""Optimizer mechanics of consistency training: Adam, the cosine learning rate and clipping."""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch.nn.utils import clip_grad_norm_
from torch.optim import Adam

try:  # torch >= 2.6
    from torch.nn.utils import clip_grads_with_norm_, get_total_norm
except ImportError:  # pragma: no cover - older torch
    clip_grads_with_norm_ = get_total_norm = None

__all__ = ["adam", "cosine_learning_rate", "clip_gradients"]


def cosine_learning_rate(step: int, total_steps: int, base: float) -> float:
    r"""Cosine decay from `base` at step 0 towards 0 at step $K$:
    $\eta_k = \tfrac12 \eta_0 (1 + \cos(\pi k / K))$.

    Arguments:
        step: Optimizer step $k$.
        total_steps: Steps $K$ of the run.
        base: Initial learning rate $\eta_0$.

    Returns:
        The learning rate of step $k$.
    """
    return 0.5 * base * (1 + math.cos(math.pi * step / total_steps))


def adam(parameters: Iterable[torch.nn.Parameter], lr: float, device: str) -> Adam:
    """Adam, fused (one kernel for all parameters) where torch supports it on `device`.

    Arguments:
        parameters: The parameters to optimize.
        lr: Learning rate.
        device: The training device.

    Returns:
        The optimizer.
    """
    parameters = list(parameters)
    if torch.device(device).type in ("cpu", "cuda"):
        try:
            return Adam(parameters, lr=lr, fused=True)
        except RuntimeError:  # fused Adam on this device needs a newer torch
            pass
    return Adam(parameters, lr=lr)


def clip_gradients(parameters: Iterable[torch.nn.Parameter], max_norm: float | None) -> float:
    r"""Total gradient norm, with the gradients scaled as `torch.nn.utils.clip_grad_norm_`.

    `clip_grad_norm_` scales by $\min(1, m / (\|g\| + 10^{-6}))$ in every step, also by 1
    when the norm is small; here the scaling runs only when the factor is below 1. The
    result is the same up to float32 rounding at the threshold (a factor of 0.99999994
    there is skipped).

    Arguments:
        parameters: Parameters whose gradients are measured (and clipped).
        max_norm: Largest total norm $m > 0$; `None` to measure only.

    Returns:
        The total norm before clipping (not finite when a gradient is not).
    """
    params = [p for p in parameters if p.grad is not None]
    if get_total_norm is None:  # older torch: the one-call form
        return float(clip_grad_norm_(params, float("inf") if max_norm is None else max_norm))
    norm = get_total_norm([p.grad for p in params])  # ()
    value = norm.item()
    if max_norm is not None and value + 1e-6 > max_norm:
        clip_grads_with_norm_(params, max_norm, norm)
    return value
