"""Milliseconds per CMPE training step with and without `torch.compile` of the network:
2 parameters, 1,000 toy simulations, batch 128, the default network, one torch thread.

    python benchmarks/tuning/warm_start/torch_compile.py
"""

import time

import torch

from sbi_cmpe.factory import consistency_nn
from sbi_cmpe.optim import adam, clip_gradients

torch.set_num_threads(1)
torch.manual_seed(0)
theta = torch.randn(1000, 2)
x = theta + 0.1 * torch.randn(1000, 2)


def ms_per_step(compiled: bool) -> tuple[float, float]:
    """(seconds of the first 50 steps, milliseconds per step of the next 500)."""
    est = consistency_nn()(theta, x)
    if compiled:
        est.net = torch.compile(est.net, dynamic=False)
    opt = adam(est.parameters(), 1e-3, "cpu")

    def step() -> None:
        i = torch.randint(0, 1000, (128,))
        opt.zero_grad(set_to_none=True)
        loss = est.loss(theta[i], x[i], num_points=30).mean()
        loss.item()
        loss.backward()
        clip_gradients(est.parameters(), 1.0)
        opt.step()

    start = time.perf_counter()
    for _ in range(50):
        step()
    warm = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(500):
        step()
    return warm, (time.perf_counter() - start) / 500 * 1e3


for compiled in (False, True):
    warm, ms = ms_per_step(compiled)
    print(f"compiled={compiled} first 50 steps {warm:.1f} s, {ms:.2f} ms per step")
