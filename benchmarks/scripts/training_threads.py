"""Time of one CMPE optimizer step on 1 and more CPU threads, for wider networks.

A step as in `training_step_profile.py` (consistency training, batch 128, `backward`, fused
Adam) of the estimator that `CMPEInference` builds for a toy problem with D parameters
(theta uniform on [-1, 1]^D, x = theta + 0.1 z, 1,000 simulations), at `hidden_features` 128
(the default), 256 and 512. Each timing is 300 steps after 30 of warm-up.

    python benchmarks/scripts/training_threads.py [THREADS ...]   # default: 1 2
"""

import sys
import time
import warnings

import torch
from sbi.utils import BoxUniform

from sbi_cmpe import CMPEInference, consistency_nn
from sbi_cmpe.optim import adam

STEPS, WARMUP, BATCH = 300, 30, 128


def step_ms(dim: int, width: int, threads: int) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    prior = BoxUniform(-torch.ones(dim), torch.ones(dim))
    theta = prior.sample((1000,))
    x = theta + 0.1 * torch.randn_like(theta)
    trainer = CMPEInference(
        prior,
        density_estimator=consistency_nn(hidden_features=width),
        show_progress_bars=False,
    )
    trainer.append_simulations(theta, x)
    trainer.train(max_num_epochs=1)  # builds the estimator
    net = trainer._neural_net
    net.train()
    optimizer = adam(net.parameters(), 1e-3, "cpu")

    def step() -> None:
        rows = torch.randint(0, len(theta), (BATCH,))
        optimizer.zero_grad(set_to_none=True)
        loss = net.loss(theta[rows], x[rows], num_points=20).mean()
        loss.backward()
        optimizer.step()

    for _ in range(WARMUP):
        step()
    start = time.perf_counter()
    for _ in range(STEPS):
        step()
    return (time.perf_counter() - start) / STEPS * 1e3


def main() -> None:
    warnings.filterwarnings("ignore")
    threads = [int(t) for t in sys.argv[1:]] or [1, 2]
    print("dim,hidden_features," + ",".join(f"ms_{t}_threads" for t in threads))
    for dim in (2, 64):
        for width in (128, 256, 512):
            times = [step_ms(dim, width, t) for t in threads]
            print(f"{dim},{width}," + ",".join(f"{ms:.2f}" for ms in times), flush=True)


if __name__ == "__main__":
    main()
