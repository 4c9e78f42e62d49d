"""Rejection of draws outside the prior, for many observations at once (`sbi_cmpe.rejection`)."""

import warnings

import pytest
import torch

from sbi_cmpe.rejection import reject_outside


def _proposal(calls):
    """Uniform draws on (0, 1) plus each condition's shift, with a unique id in column 1;
    records the size of each call."""
    counter = [0]

    def propose(k, condition):  # condition: (b, 1) shifts
        calls.append(k * len(condition))
        values = torch.rand(k, len(condition)) + condition[:, 0]
        ids = torch.arange(counter[0], counter[0] + values.numel()).reshape(values.shape)
        counter[0] += values.numel()
        return torch.stack([values, ids.float()], dim=-1)  # (k, b, 2)

    return propose


def _inside(theta):
    return theta[:, 0] < 1.0


def test_every_condition_gets_its_draws_once_each_and_only_inside():
    # Acceptance 1, 0.5, 0.1, 0.02 (and 1 again) for the five conditions.
    shifts = torch.tensor([[0.0], [0.5], [0.9], [0.98], [-1.0]])
    calls = []
    draws, rates = reject_outside(_proposal(calls), _inside, 300, shifts, chunk=512)
    assert draws.shape == (300, 5, 2)
    assert torch.all(draws[..., 0] < 1.0)
    assert torch.all(draws[..., 0] >= shifts[:, 0])
    ids = draws[..., 1].flatten()
    assert len(ids.unique()) == len(ids)  # no draw written twice, no row left empty
    assert torch.allclose(rates, torch.tensor([1.0, 0.5, 0.1, 0.02, 1.0]), atol=0.04)
    # A call holds at most `chunk` draws, or one condition's proposals (at most n).
    assert all(c <= max(512, 300) for c in calls)


def test_accepted_draws_keep_the_proposal_distribution():
    # Truncating U(0.5, 1.5) to < 1 gives U(0.5, 1): mean 0.75, sd 0.144.
    shifts = torch.full((40, 1), 0.5)
    draws, _ = reject_outside(_proposal([]), _inside, 2_000, shifts, chunk=4_096)
    values = draws[..., 0]
    assert abs(values.mean() - 0.75) < 0.005
    assert abs(values.std() - 0.5 / 12**0.5) < 0.005
    # The draws of one condition come in the order they were proposed.
    ids = draws[:, 0, 1]
    assert torch.all(ids[1:] > ids[:-1])


def test_each_call_stays_within_the_chunk():
    calls = []
    shifts = torch.zeros(1_000, 1)
    reject_outside(_proposal(calls), _inside, 50, shifts, chunk=1_000)
    assert all(c <= 1_000 for c in calls)
    assert sum(calls) == (53 + 4) * 1_000  # all accepted: one round of ceil(1.05 n) + 4 each


def test_time_limit_returns_partial_draws_or_raises():
    shifts = torch.tensor([[0.0], [0.999]])  # the second accepts 1 in 1,000
    with pytest.warns(UserWarning, match="Returning partial results"):
        draws, _ = reject_outside(
            _proposal([]),
            _inside,
            100_000,
            shifts,
            chunk=4_096,
            max_sampling_time=0.3,
            return_partial_on_timeout=True,
        )
    assert draws.shape[1:] == (2, 2) and 0 < len(draws) < 100_000
    assert torch.all(draws[..., 0] < 1.0)
    with pytest.raises(RuntimeError, match="max_sampling_time"):
        reject_outside(_proposal([]), _inside, 10_000, shifts, chunk=4_096, max_sampling_time=0.3)


def _warnings_of(shifts, n, **kwargs):
    """The low-acceptance warnings of one `reject_outside` call (its result or error kept)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            reject_outside(_proposal([]), _inside, n, shifts, chunk=4_096, **kwargs)
        except RuntimeError:
            pass
    return [str(w.message) for w in caught if "fell inside" in str(w.message)]


def test_low_acceptance_is_warned_once_clearly_below_or_at_the_time_limit():
    torch.manual_seed(0)
    # 1 in 1,000 accepted: warned while sampling, once, even when the time limit stops it.
    assert len(_warnings_of(torch.tensor([[0.999]]), 50, warn_acceptance=0.01)) == 1
    slow = _warnings_of(
        torch.tensor([[0.999]] * 40), 1_000, warn_acceptance=0.01, max_sampling_time=0.2
    )
    assert len(slow) == 1
    # 3 in 100 accepted: above the threshold, not warned, however few the proposals.
    assert _warnings_of(torch.tensor([[0.97]] * 20), 30, warn_acceptance=0.01) == []
    assert _warnings_of(torch.tensor([[0.999]]), 50) == []  # no threshold, no warning
