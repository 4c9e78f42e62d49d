r"""Rejection of draws outside the prior's support, for many observations at once.

sbi's `accept_reject_sample` proposes the same number of draws for every observation in
each round, as many rounds as the worst observation needs, and keeps each observation's
accepted draws in a Python list (a loop over the observations in every round). Over
thousands of observations that costs time in Python and memory in small tensors.

Here the accepted draws go straight into one output tensor `(n, B, D)`, and each round
proposes only for the observations that still lack draws, as many as each one needs at
its own acceptance rate: with $r_b$ draws still missing for observation $b$, $a_b$ of its
$m_b$ proposals accepted so far, it gets
$\lceil 1.05\, r_b (m_b + 1) / (a_b + 1) \rceil + 4$ proposals (all draws are accepted in
the first round's estimate). Observations are sorted by that number and cut into blocks of
at most `chunk` draws (one observation's block may hold up to $\max(\text{chunk}, n)$), so
that each network call is full and memory beyond the output stays at one block.
"""

from __future__ import annotations

import time
import warnings
from typing import Callable, Optional, Tuple

import torch
from torch import Tensor
from tqdm.auto import tqdm

__all__ = ["reject_outside", "LOW_ACCEPTANCE_MESSAGE", "TIMEOUT_MESSAGE", "WARN_AFTER"]

# Proposals per missing draw, over the estimated acceptance rate, and extra proposals.
_MARGIN, _EXTRA = 1.05, 4
# Proposals for one condition after which a low acceptance is warned about while sampling
# (if even its acceptance plus three of its standard errors lies below the threshold).
WARN_AFTER = 1_000

LOW_ACCEPTANCE_MESSAGE = (
    "Only {rate:.2%} of the draws fell inside the prior's support (for the worst x), so "
    "sampling is slow. The estimator may be poorly trained for this x, or x may be unlike "
    "the simulations; `max_sampling_time` bounds the time and `reject_outside_prior=False` "
    "skips the rejection."
)

TIMEOUT_MESSAGE = (
    "Sampling stopped after max_sampling_time={limit} s of rejecting draws outside the "
    "prior's support ({collected} of {wanted} draws for the worst x). The acceptance is "
    "very low: check the estimator and x (misspecification?), sample with "
    "reject_outside_prior=False, or pass return_partial_on_timeout=True."
)


def reject_outside(
    propose: Callable[[int, Tensor], Tensor],
    accept: Callable[[Tensor], Tensor],
    num_samples: int,
    condition: Tensor,
    chunk: int,
    max_sampling_time: Optional[float] = None,
    return_partial_on_timeout: bool = False,
    show_progress_bars: bool = False,
    warn_acceptance: float = 0.0,
) -> Tuple[Tensor, Tensor]:
    """`num_samples` accepted draws for each of `B` conditions.

    Arguments:
        propose: `(k, condition_block (b, ...)) -> draws (k, b, D)`.
        accept: `draws (N, D) -> (N,)` booleans, `True` inside the support.
        num_samples: Draws wanted per condition, `n >= 1`.
        condition: Conditions of shape `(B, ...)`.
        chunk: Most draws proposed in one call of `propose`.
        max_sampling_time: Time limit (s); `None` for none.
        return_partial_on_timeout: At the time limit, return the first draws that every
            condition has (at least one each) instead of raising.
        show_progress_bars: Show the fewest accepted draws of any condition.
        warn_acceptance: Warn once (`LOW_ACCEPTANCE_MESSAGE`) when a condition's acceptance
            rate is below this: while sampling, as soon as one with at least `WARN_AFTER`
            proposals is clearly below (so that a rejection that never ends says why), at
            the time limit, or at the end.

    Returns:
        Draws `(n, B, D)` (`n` below `num_samples` only after a time-out) and the acceptance
        rate of each condition `(B,)`.

    Raises:
        RuntimeError: At the time limit, without `return_partial_on_timeout` or with a
            condition that has no draw yet.
    """
    n, num = num_samples, condition.shape[0]
    device = condition.device
    out: Optional[Tensor] = None  # (n, B, D), allocated at the first proposals
    filled = torch.zeros(num, dtype=torch.long, device=device)  # accepted so far, capped at n
    accepted = torch.zeros(num, dtype=torch.float64, device=device)
    proposed = torch.zeros(num, dtype=torch.float64, device=device)
    start = time.perf_counter()
    warned = False
    bar = tqdm(total=n, disable=not show_progress_bars, desc=f"Drawing {n} samples")
    try:
        while True:
            todo = (filled < n).nonzero().squeeze(1)  # (T,)
            if not warned:
                warned = _warn_if_low(accepted, proposed, warn_acceptance, len(todo) == 0)
            if len(todo) == 0:
                break
            rate = (accepted[todo] + 1) / (proposed[todo] + 1)  # (T,)
            missing = (n - filled[todo]).double()
            want = (_MARGIN * missing / rate).ceil().long() + _EXTRA  # (T,)
            want = want.clamp(max=max(chunk, n))  # bounds a block's time and memory
            want, order = want.sort()
            todo = todo[order]
            i = 0
            while i < len(todo):
                if (
                    max_sampling_time is not None
                    and time.perf_counter() - start > max_sampling_time
                ):
                    if not warned:
                        _warn_if_low(accepted, proposed, warn_acceptance, done=True)
                    return _timed_out(
                        out,
                        filled,
                        accepted,
                        proposed,
                        n,
                        max_sampling_time,
                        return_partial_on_timeout,
                    )
                k = int(want[i])
                block = todo[i : i + max(1, chunk // k)]  # (b,)
                k = int(want[i : i + len(block)].max())
                i += len(block)
                draws = propose(k, condition[block])  # (k, b, D)
                ok = accept(draws.reshape(k * len(block), -1)).reshape(k, len(block))  # (k, b)
                if out is None:
                    out = draws.new_empty(n, num, draws.shape[-1])
                # Accepted draw j of condition c goes to row filled[c] + (its rank among
                # the accepted) while rows remain.
                rows = filled[block] + ok.long().cumsum(0) - 1  # (k, b)
                keep = ok & (rows < n)
                columns = block.expand(k, -1)  # (k, b)
                out[rows[keep], columns[keep]] = draws[keep]
                count = ok.sum(0)  # (b,)
                accepted[block] += count.double()
                proposed[block] += k
                filled[block] = (filled[block] + count).clamp(max=n)
            bar.update(int(filled.min()) - bar.n)
    finally:
        bar.close()
    return out, (accepted / proposed).float()


def _warn_if_low(accepted: Tensor, proposed: Tensor, threshold: float, done: bool) -> bool:
    """Warn if a condition accepts fewer than `threshold` of its proposals: once `done`, by
    its rate; before, only with `WARN_AFTER` proposals and a rate below `threshold` by more
    than three (Poisson) standard errors of its count. Returns whether it warned."""
    if done:
        counted = proposed >= 1  # (B,)
        clear = accepted < threshold * proposed
    else:
        counted = proposed >= WARN_AFTER
        clear = accepted + 3 * (accepted + 1).sqrt() < threshold * proposed
    if not bool((counted & clear).any()):
        return False
    worst = float((accepted[counted] / proposed[counted]).min())
    warnings.warn(LOW_ACCEPTANCE_MESSAGE.format(rate=worst), stacklevel=5)
    return True


def _timed_out(
    out: Optional[Tensor],
    filled: Tensor,
    accepted: Tensor,
    proposed: Tensor,
    wanted: int,
    limit: float,
    partial: bool,
) -> Tuple[Tensor, Tensor]:
    """The partial draws at the time limit, or the time-out error."""
    collected = int(filled.min())
    if not partial or collected == 0 or out is None:
        raise RuntimeError(TIMEOUT_MESSAGE.format(limit=limit, collected=collected, wanted=wanted))
    warnings.warn(
        f"max_sampling_time={limit} s ran out with {collected} of {wanted} draws for the "
        "worst x. Returning partial results: the first draws of every x.",
        stacklevel=4,
    )
    rates = accepted / proposed.clamp(min=1)
    return out[:collected], rates.float()
