"""Where to place the noise levels of 3 sampling steps (issue 17): C2ST of cached CMPE networks
at alternative levels, on tuning seeds and observations 6-8.

For each cached CMPE network of the folders given, 10,000 draws at each observation with 3
steps at the levels of each variant (T = 10 first; the default is the Karras grid of
`sbi_cmpe.consistency.sampling_times`; the variants set `NoiseSchedule.step_levels` on the
network's schedule), scored as the benchmark scores them
(`benchmark_c2st`, the benchmark's draw seeds). One CSV row per network, variant and
observation on standard output.

    python benchmarks/tuning/sampling_times/probe.py FOLDER [FOLDER ...]

`LEVELS="0.3,0.05 0.4,0.03"` in the environment scores those variants (and the default) instead,
`OBSERVATIONS="1 2 3 4 5"` those observations.
"""

import csv
import dataclasses
import os
import sys
from pathlib import Path

import torch

from sbi_cmpe.benchmark.cache import cached_posteriors
from sbi_cmpe.benchmark.run import _sampling_seed, benchmark_c2st
from sbi_cmpe.benchmark.tasks import load_task

OBSERVATIONS = tuple(int(o) for o in os.environ.get("OBSERVATIONS", "6 7 8").split())
# Noise levels after T of 3 steps; None: the default Karras grid (1.41, 0.0925 for T = 10).
VARIANTS = {
    "default": None,
    "1.41,0.02": (1.4126, 0.02),
    "1.0,0.03": (1.0, 0.03),
    "0.5,0.02": (0.5, 0.02),
    "0.4,0.05": (0.4, 0.05),
}
if os.environ.get("LEVELS"):
    VARIANTS = {"default": None}
    VARIANTS.update({v: tuple(map(float, v.split(","))) for v in os.environ["LEVELS"].split()})


def main(folders: list) -> None:
    torch.set_num_threads(1)
    out = csv.writer(sys.stdout)
    out.writerow(["task", "budget", "method", "seed", "variant", "observation", "c2st"])
    for folder in map(Path, folders):
        for cached in cached_posteriors(folder / "cache"):
            if not cached.method.startswith("cmpe"):
                continue
            task = load_task(cached.task)
            posterior = torch.load(cached.path, weights_only=False).posterior
            schedule = posterior.estimator.schedule
            for name, levels in VARIANTS.items():
                step_levels = () if levels is None else (levels,)
                posterior.estimator.schedule = dataclasses.replace(
                    schedule, step_levels=step_levels
                )
                for obs in OBSERVATIONS:
                    torch.manual_seed(_sampling_seed(cached.seed, obs, 3))
                    draws = posterior.sample(
                        (10_000,), x=task.observation(obs), num_steps=3, show_progress_bars=False
                    )
                    score = benchmark_c2st(draws, task.reference_samples(obs, 10_000))
                    row = [cached.task, cached.budget, cached.method, cached.seed, name, obs]
                    out.writerow([*row, round(score, 4)])
                    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
