"""The first look at a warm start, before it was an option of `CMPEInference.train`: the
first `K1` optimizer steps of a run of `K` train the consistency function against the clean
parameters (teacher theta, weight 1 / (t - eps); the option later used theta + eps z, the
exact consistency teacher at eps), then the usual iCT loss takes over, with the same
network, optimizer, cosine learning rate and curriculum position. It patches
`ConsistencyEstimator.loss` for its own runs.

    python benchmarks/tuning/warm_start/fraction_sweep.py K:K1 [K:K1 ...]

Two moons, 1,000 simulations, tuning seed 1, observations 6-8 (the simulations of
benchmarks/tuning/training_time), one torch thread. Prints one row per (variant,
observation, steps); the rows of its runs are in fraction_sweep.txt.
"""

import sys
import warnings
from pathlib import Path

import torch

from sbi_cmpe.benchmark.cache import simulations
from sbi_cmpe.benchmark.methods import train_method
from sbi_cmpe.benchmark.run import benchmark_c2st
from sbi_cmpe.benchmark.tasks import load_task, seeded
from sbi_cmpe.consistency import consistency_distance, training_pairs
from sbi_cmpe.estimator import ConsistencyEstimator

warnings.filterwarnings("ignore")
torch.set_num_threads(1)
CACHE = Path("benchmarks/tuning/training_time/cache")
SEED, OBSERVATIONS, DRAWS = 1, (6, 7, 8), 10_000
state = {"step": 0, "warm": 0}
_loss = ConsistencyEstimator.loss


def loss(self, input, condition, num_points=None, generator=None, warm_start=False):
    if not (self.training and torch.is_grad_enabled()):
        return _loss(self, input, condition, num_points, generator)
    state["step"] += 1
    if state["step"] > state["warm"]:
        return _loss(self, input, condition, num_points, generator)
    theta = (input.reshape(input.shape[0], -1) - self.theta_mean) / self.theta_std  # (B, D)
    s = self.schedule
    _, t, z = training_pairs(s.grid(None), *theta.shape, s.p_mean, s.p_std, generator)
    student = self.consistency_function(theta + t[:, None] * z, t, self._embed(condition))
    return consistency_distance(student, theta, torch.full_like(t, s.eps), t)


def run(total: int, warm: int) -> None:
    """Train one variant and print its C2ST rows."""
    state.update(step=0, warm=warm)
    method = f"cmpe:steps={total},warm_start=0"  # the script's own warm start only
    trained = seeded(SEED, lambda: train_method(method, task.prior, theta, x))
    chosen = trained.posterior.num_steps
    for obs in OBSERVATIONS:
        x_o, ref = task.observation(obs), task.reference_samples(obs, DRAWS)
        for steps in (None, 3):
            kw = {} if steps is None else {"num_steps": steps}
            draws = seeded(
                1_000_003 * SEED + 1_009 * obs + (steps or 0),
                lambda x_o=x_o, kw=kw: trained.posterior.sample(
                    (DRAWS,), x=x_o, show_progress_bars=False, **kw
                ),
            )
            label = f"auto({chosen})" if steps is None else steps
            c2st = benchmark_c2st(draws, ref)
            print(
                f"K={total} K1={warm} obs={obs} steps={label} c2st={c2st:.4f} "
                f"train_s={trained.train_time_s:.1f} opt_steps={trained.optimizer_steps}",
                flush=True,
            )


ConsistencyEstimator.loss = loss
task = load_task("two_moons")
theta, x = simulations(task, 1000, SEED, CACHE)
for spec in sys.argv[1:]:
    run(*(int(v) for v in spec.split(":")))
