"""The truncated-rounds test's scenario with warm_start=0.5 and 1,250 epochs (5,000
optimizer steps at 500 simulations, 8,750 at 1,000, batch 128)."""

import time

import torch
from sbi.utils import RestrictedPrior, get_density_thresholder
from sbi.utils.metrics import c2st

from sbi_cmpe import CMPEInference, consistency_nn
from sbi_cmpe.benchmark.tasks import load_task

torch.set_num_threads(1)
task = load_task("two_moons")
x_o, reference = task.observation(1), task.reference_samples(1, 10_000)
kw = dict(warm_start=0.5, max_num_epochs=1250)


def trainer():
    return CMPEInference(
        task.prior, density_estimator=consistency_nn(density=True), show_progress_bars=False
    )


t = time.time()
torch.manual_seed(0)
one = trainer()
theta = task.prior.sample((1000,))
one.append_simulations(theta, task.simulator(theta)).train(**kw)
single = c2st(one.build_posterior().sample((10_000,), x=x_o), reference).item()
print("one round of 1,000:", round(single, 3), "steps", one.optimizer_steps, flush=True)
torch.manual_seed(0)
rounds = trainer()
theta = task.prior.sample((500,))
rounds.append_simulations(theta, task.simulator(theta)).train(**kw)
posterior = rounds.build_posterior().set_default_x(x_o)
accept = get_density_thresholder(posterior, quantile=1e-3, num_samples_to_estimate_support=10_000)
truncated = RestrictedPrior(task.prior, accept, posterior=posterior, sample_with="rejection")
theta = truncated.sample((500,), show_progress_bars=False, print_rejected_frac=False)
rounds.append_simulations(theta, task.simulator(theta), proposal=truncated)
rounds.train(retrain_from_scratch=True, **kw)
two = c2st(rounds.build_posterior().sample((10_000,), x=x_o), reference).item()
print(
    "two truncated rounds of 500:",
    round(two, 3),
    "steps",
    rounds.optimizer_steps,
    "| total",
    round(time.time() - t),
    "s",
    flush=True,
)
