"""The step choice of the warm-started two-moons network (10,000 simulations, seed 0) against
C2ST at 5 and 10 steps, from the cached posterior of this folder's run:

    python benchmarks/warm_start/step_choice.py

Prints the mean C2ST over observations 1-5 at 5 and 10 steps (its own sampling seeds, not the
benchmark's) and the `StepChoice` training made (kernel scores, lower is better, and their
standard errors, at 1, 2, 3, 5 and 10 steps).
"""

import warnings

import torch

from sbi_cmpe.benchmark.run import benchmark_c2st
from sbi_cmpe.benchmark.tasks import load_task, seeded

warnings.filterwarnings("ignore")
torch.set_num_threads(1)
PATH = "benchmarks/warm_start/cache/posterior_two_moons_10000_cmpe_steps_5000_warm_start_0.8_0.pt"
trained = torch.load(PATH, weights_only=False)
task = load_task("two_moons")


def c2st(obs: int, steps: int) -> float:
    draws = seeded(
        obs,
        lambda: trained.posterior.sample(
            (10_000,), x=task.observation(obs), num_steps=steps, show_progress_bars=False
        ),
    )
    return benchmark_c2st(draws, task.reference_samples(obs, 10_000))


for steps in (5, 10):
    values = [c2st(obs, steps) for obs in range(1, 6)]
    print(steps, [round(v, 4) for v in values], round(sum(values) / 5, 4), flush=True)
print(trained.posterior.estimator.step_choice)
