"""Time 10,000 draws for one x in network calls of different sizes (cached CMPE posteriors,
seed 0, observation 1; one thread, best and median of 5 rounds, sizes alternating). Run from
the repository root:

    python benchmarks/scripts/sampling_chunks.py two_moons_10000 slcp_10000
"""

import sys
import time
import warnings
from pathlib import Path

import torch

from sbi_cmpe.benchmark.cache import posterior_path
from sbi_cmpe.benchmark.tasks import load_task

warnings.simplefilter("ignore")
torch.set_num_threads(1)
SIZES = [10_000, 4_096, 2_048, 1_024, 512]
for cell in sys.argv[1:]:
    task, budget = cell.rsplit("_", 1)
    path = posterior_path(Path("benchmarks/results/cache"), task, int(budget), "cmpe", 0)
    posterior = torch.load(path, weights_only=False).posterior
    x_o = load_task(task).observation(1)
    posterior.sample((1_000,), x=x_o, show_progress_bars=False)  # warm-up
    seconds = {size: [] for size in SIZES}
    for _ in range(5):
        for size in SIZES:
            start = time.perf_counter()
            posterior.sample(
                (10_000,), x=x_o, max_sampling_batch_size=size, show_progress_bars=False
            )
            seconds[size].append(time.perf_counter() - start)
    for size, times in seconds.items():
        times.sort()
        print(f"{cell} calls of {size}: best {times[0]:.4f} s, median {times[2]:.4f} s")
