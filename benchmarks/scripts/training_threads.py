"""Time of one CMPE optimizer step on 1 and more CPU threads, for wider networks.

A step as in `training_step_profile.py` (consistency training, batch 128, `backward`, fused
Adam) of the estimator of its toy problem (`toy_network`) with D parameters, at
`hidden_features` 128 (the default), 256 and 512. Each timing is 300 steps after 30 of warm-up.

    python benchmarks/scripts/training_threads.py [THREADS ...]   # default: 1 2
"""

import sys
import time
import warnings

import torch
from training_step_profile import toy_network  # the same toy problem and estimator

STEPS, WARMUP, BATCH = 300, 30, 128


def step_ms(dim: int, width: int, threads: int) -> float:
    torch.set_num_threads(threads)
    net, optimizer, theta, x = toy_network(dim, width)

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
