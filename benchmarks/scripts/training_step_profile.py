"""Time of one CMPE optimizer step on a CPU thread, eager and under `torch.compile`, and the
share of each operator in it.

A step is what `sbi_cmpe.training_loop.train_epoch` does: `ConsistencyEstimator.loss` of a
batch of 128 (consistency training, and the warm start whose teacher needs no network call),
`backward`, fused Adam. The estimator is the default one that `CMPEInference` builds for a
2-parameter problem with 1,000 simulations (theta uniform on [-1, 1]^2, x = theta + 0.1 z).
Each timing is 500 steps after 50 of warm-up; the compiled network (`torch.compile` of
`VectorFieldMLP`, inductor, static shapes) is timed after its compilation, whose seconds are
printed too. Last, torch's profiler over 200 consistency-training steps, by operator.

    python benchmarks/scripts/training_step_profile.py
"""

import time
import warnings
from typing import Optional

import torch
from sbi.utils import BoxUniform
from torch.profiler import profile

from sbi_cmpe import CMPEInference, consistency_nn
from sbi_cmpe.optim import adam

STEPS, WARMUP, BATCH = 500, 50, 128


def toy_network(dim: int = 2, hidden_features: Optional[int] = None) -> tuple:
    """The estimator that `CMPEInference` builds for the toy problem with `dim` parameters
    (theta uniform on [-1, 1]^dim, x = theta + 0.1 z, 1,000 simulations; seed 0), the default
    one unless `hidden_features` is given, in training mode with its fused Adam.

    Returns:
        `(net, optimizer, theta, x)`, theta and x of shape `(1000, dim)`.
    """
    torch.manual_seed(0)
    prior = BoxUniform(-torch.ones(dim), torch.ones(dim))
    theta = prior.sample((1000,))
    x = theta + 0.1 * torch.randn_like(theta)
    estimator = (
        "mlp" if hidden_features is None else consistency_nn(hidden_features=hidden_features)
    )
    trainer = CMPEInference(prior, density_estimator=estimator, show_progress_bars=False)
    trainer.append_simulations(theta, x)
    trainer.train(max_num_epochs=1)  # builds the estimator
    net = trainer._neural_net
    net.train()
    return net, adam(net.parameters(), 1e-3, "cpu"), theta, x


def main() -> None:
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    net, optimizer, theta, x = toy_network()

    def step(warm: bool) -> None:
        rows = torch.randint(0, len(theta), (BATCH,))
        optimizer.zero_grad(set_to_none=True)
        loss = net.loss(theta[rows], x[rows], num_points=20, warm_start=warm).mean()
        loss.item()
        loss.backward()
        optimizer.step()

    def timed(label: str) -> None:
        for warm in (False, True):
            for _ in range(WARMUP):
                step(warm)
            start = time.perf_counter()
            for _ in range(STEPS):
                step(warm)
            per_step = (time.perf_counter() - start) / STEPS * 1e3
            kind = "warm start" if warm else "consistency training"
            print(f"{label:9s} {kind:22s} {per_step:.2f} ms per step")

    timed("eager")
    with profile() as prof:
        for _ in range(200):
            step(False)
    eager_net = net.net
    start = time.perf_counter()
    net.net = torch.compile(eager_net, dynamic=False)
    for warm in (False, True):
        for _ in range(3):
            step(warm)
    print(f"compilation {time.perf_counter() - start:.1f} s")
    timed("compiled")
    net.net = eager_net
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
