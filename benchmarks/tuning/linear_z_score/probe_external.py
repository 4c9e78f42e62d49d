"""First probe (before `z_score_theta="linear"` existed): does an affine-in-x standardization
of theta fix CMPE's narrow dimensions? The scaling suite's linear Gaussian, tuning seed 1,
observations 6-8. "affine" trains CMPE on (theta - A x - b) / r, with A, b from least squares
on the simulations and r the residuals' standard deviations, and maps its draws back; "plain"
trains on theta. Output: probe_external.txt.

Usage (repository root): python benchmarks/tuning/linear_z_score/probe_external.py 32 affine
"""

import sys
import time
import warnings
from pathlib import Path

import torch
from torch.distributions import MultivariateNormal

from sbi_cmpe import CMPEInference
from sbi_cmpe.benchmark.cache import simulations
from sbi_cmpe.benchmark.scaling import _accuracy, exact_posterior, linear_gaussian_task

warnings.simplefilter("ignore")
torch.set_num_threads(1)
dim, mode = int(sys.argv[1]), sys.argv[2]
task = linear_gaussian_task(dim)
theta, x = simulations(task, 10_000, 1, Path("/tmp/precond/cache"))
prior = task.prior
if mode == "affine":
    design = torch.cat([x, torch.ones(len(x), 1)], 1).double()  # (N, D + 1)
    coef = torch.linalg.lstsq(design, theta.double()).solution.float()  # (D + 1, D)

    def predict(xs: torch.Tensor) -> torch.Tensor:
        return torch.cat([xs, torch.ones(len(xs), 1)], 1) @ coef

    residual = theta - predict(x)
    scale = residual.std(0)
    theta = residual / scale
    prior = MultivariateNormal(torch.zeros(dim), torch.eye(dim))
torch.manual_seed(1)
inference = CMPEInference(prior, show_progress_bars=False)
inference.append_simulations(theta, x)
start = time.time()
inference.train()
seconds = time.time() - start
posterior = inference.build_posterior()
for steps in (None, 1, 3):
    results = []
    for obs in (6, 7, 8):
        x_o = task.observation(obs)
        torch.manual_seed(obs)
        kwargs = {} if steps is None else dict(num_steps=steps)
        draws = posterior.sample((10_000,), x=x_o, show_progress_bars=False, **kwargs)
        if mode == "affine":
            draws = predict(x_o) + scale * draws
        results.append(_accuracy(draws, exact_posterior(dim, x_o)))
    means = {key: round(sum(r[key] for r in results) / 3, 3) for key in results[0]}
    label = steps if steps else f"auto({posterior.num_steps})"
    print(dim, mode, "steps", label, means, f"train {seconds:.0f}s", flush=True)
