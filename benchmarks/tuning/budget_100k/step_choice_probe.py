"""The step rule on cached 100,000-simulation two-moons networks (see COMMAND)."""

import pathlib
import sys

import torch

from sbi_cmpe.benchmark.cache import cached_posteriors
from sbi_cmpe.benchmark.tasks import load_task
from sbi_cmpe.steps import choose_num_steps

torch.set_num_threads(1)
task = load_task("two_moons")
for folder in sys.argv[1:]:
    for cached in cached_posteriors(pathlib.Path(folder) / "cache"):
        post = torch.load(cached.path, weights_only=False).posterior
        for n in (512, 2048, 8192):
            torch.manual_seed(1000 + cached.seed)
            theta = task.prior.sample((n,))
            c = choose_num_steps(post.estimator, theta, task.simulator(theta), min_draws=16 * n)
            print(
                cached.method,
                cached.budget,
                n,
                c.num_steps,
                c.scores,
                c.standard_errors,
                round(c.seconds, 1),
                flush=True,
            )
