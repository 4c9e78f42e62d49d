"""The truncated-rounds test's scenario with the training keywords given as JSON.

`python truncated_rounds.py '{"warm_start": 0.5, "max_num_epochs": 1250}' [seed]` (5,000
optimizer steps at 500 simulations, 8,750 at 1,000, batch 128); `'{}'` for the defaults.
A third argument, JSON keywords of the second round's `train` only (e.g.
`'{"retrain_from_scratch": false}'` to continue the first round's network), skips the one
round of 1,000.
"""

import json
import sys
import time

import torch
from sbi.utils import RestrictedPrior, get_density_thresholder
from sbi.utils.metrics import c2st

from sbi_cmpe import CMPEInference, consistency_nn
from sbi_cmpe.benchmark.tasks import load_task

torch.set_num_threads(1)
task = load_task("two_moons")
x_o, reference = task.observation(1), task.reference_samples(1, 10_000)
kw = json.loads(sys.argv[1])
seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
second = {"retrain_from_scratch": True, **kw}
if len(sys.argv) > 3:
    second.update(json.loads(sys.argv[3]))
print("keywords", kw, "seed", seed, "second round", second)


def trainer():
    return CMPEInference(
        task.prior, density_estimator=consistency_nn(density=True), show_progress_bars=False
    )


t = time.time()
if len(sys.argv) <= 3:
    torch.manual_seed(seed)
    one = trainer()
    theta = task.prior.sample((1000,))
    one.append_simulations(theta, task.simulator(theta)).train(**kw)
    single = c2st(one.build_posterior().sample((10_000,), x=x_o), reference).item()
    print("one round of 1,000:", round(single, 3), "steps", one.optimizer_steps, flush=True)
torch.manual_seed(seed)
rounds = trainer()
theta = task.prior.sample((500,))
rounds.append_simulations(theta, task.simulator(theta)).train(**kw)
posterior = rounds.build_posterior().set_default_x(x_o)
accept = get_density_thresholder(posterior, quantile=1e-3, num_samples_to_estimate_support=10_000)
truncated = RestrictedPrior(task.prior, accept, posterior=posterior, sample_with="rejection")
theta = truncated.sample((500,), show_progress_bars=False, print_rejected_frac=False)
rounds.append_simulations(theta, task.simulator(theta), proposal=truncated)
rounds.train(**second)
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
