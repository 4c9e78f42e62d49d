"""Optimizer mechanics: gradient clipping and the cosine learning rate."""

import math

import pytest
import torch

import sbi_cmpe.optim as optim


@pytest.mark.parametrize("norm", [0.5, 4.9999, 5.0, 5.0001, 5.5, 100.0])
@pytest.mark.parametrize("max_norm", [5.0, None])
@pytest.mark.parametrize("older_torch", [False, True])
def test_clip_gradients_matches_clip_grad_norm(norm, max_norm, older_torch, monkeypatch):

    if older_torch:
        monkeypatch.setattr(optim, "get_total_norm", None)
    torch.manual_seed(0)
    grads = [torch.randn(4, 3), torch.randn(3)]
    scale = norm / torch.cat([g.flatten() for g in grads]).norm()
    ours = [torch.zeros_like(g, requires_grad=True) for g in grads]
    theirs = [torch.zeros_like(g, requires_grad=True) for g in grads]
    for a, b, g in zip(ours, theirs, grads):
        a.grad, b.grad = g * scale, g * scale
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm or float("inf"))
    got = optim.clip_gradients(ours, max_norm)
    assert got == pytest.approx(float(expected), rel=1e-6)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a.grad, b.grad, rtol=2e-7, atol=0)


def test_cosine_learning_rate_decays_from_base_to_zero():
    assert optim.cosine_learning_rate(0, 100, 1e-3) == 1e-3
    assert optim.cosine_learning_rate(50, 100, 1e-3) == pytest.approx(5e-4)
    assert optim.cosine_learning_rate(100, 100, 1e-3) == pytest.approx(0.0, abs=1e-18)
    rates = [optim.cosine_learning_rate(k, 100, 1.0) for k in range(101)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))
    assert math.isclose(rates[25], 0.5 * (1 + math.cos(math.pi / 4)))


def test_adam_is_fused_on_cpu():
    opt = optim.adam(torch.nn.Linear(2, 2).parameters(), 1e-3, "cpu")
    assert opt.param_groups[0]["lr"] == 1e-3
    assert opt.defaults.get("fused") in (True, None)
