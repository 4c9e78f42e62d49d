"""Three-parameter check of the P_mean rule: sbi's linear Gaussian task, analytic posterior.

theta ~ N(0, 0.1 I_3) and x = theta + N(0, 0.1 I_3) (`sbi.simulators.linear_gaussian`), whose
posterior sbi gives in closed form (`true_posterior_linear_gaussian_mvn_prior`). Trains CMPE on
n simulations with the given P_mean and prints the C2ST of 10,000 draws against 10,000 draws of
the true posterior, for 3 observations from the prior predictive. Usage (repository root):

    python benchmarks/scripts/check3d.py -2.0 1 10000   # P_mean, seed, n
"""

import sys
import time

import torch
from sbi.simulators.linear_gaussian import (
    linear_gaussian,
    true_posterior_linear_gaussian_mvn_prior,
)
from sbi.utils.metrics import c2st
from torch.distributions import MultivariateNormal

from sbi_cmpe import CMPEInference, NoiseSchedule, consistency_nn


def main(p_mean: float, seed: int, n: int, dim: int = 3) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    prior_mean, prior_cov = torch.zeros(dim), 0.1 * torch.eye(dim)
    shift, cov = torch.zeros(dim), 0.1 * torch.eye(dim)
    prior = MultivariateNormal(prior_mean, prior_cov)
    theta = prior.sample((n,))
    x = linear_gaussian(theta, shift, cov)
    builder = consistency_nn(schedule=NoiseSchedule(p_mean=p_mean))
    inference = CMPEInference(prior, density_estimator=builder, show_progress_bars=False)
    start = time.time()
    inference.append_simulations(theta, x).train()
    seconds = time.time() - start
    posterior = inference.build_posterior()
    x_os = linear_gaussian(prior.sample((3,)), shift, cov)
    scores = []
    for x_o in x_os:
        true = true_posterior_linear_gaussian_mvn_prior(x_o, shift, cov, prior_mean, prior_cov)
        draws = posterior.sample((10_000,), x=x_o, show_progress_bars=False)
        scores.append(float(c2st(draws, true.sample((10_000,)))))
    print(
        f"p_mean {p_mean} seed {seed} n {n} c2st {[round(v, 3) for v in scores]} "
        f"mean {sum(scores) / 3:.3f} train {seconds:.0f}s",
        flush=True,
    )


if __name__ == "__main__":
    main(float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
