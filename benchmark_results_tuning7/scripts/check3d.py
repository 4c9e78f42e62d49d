"""Three-parameter check of the P_mean rule: a linear Gaussian task with an analytic posterior.

theta ~ N(0, 0.1 I_3), x = theta + N(0, 0.1 I_3), so p(theta | x) = N(x / 2, 0.05 I_3). Trains
CMPE on n simulations with the given P_mean and prints the C2ST of 10,000 draws against 10,000
analytic draws for 3 fixed observations. Usage (run in the repository root):

    python benchmark_results_tuning7/scripts/check3d.py -2.0 1 10000   # P_mean, seed, n
"""

import sys
import time

import torch
from sbi.utils.metrics import c2st
from torch.distributions import MultivariateNormal

from sbi_cmpe import CMPEInference, consistency_nn


def main(p_mean: float, seed: int, n: int, dim: int = 3) -> None:
    torch.set_num_threads(1)
    prior = MultivariateNormal(torch.zeros(dim), 0.1 * torch.eye(dim))
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(n, dim, generator=g) * 0.1**0.5  # prior draws
    x = theta + torch.randn(n, dim, generator=g) * 0.1**0.5
    torch.manual_seed(seed)
    build = consistency_nn(p_mean=p_mean)
    inference = CMPEInference(prior, density_estimator=build, show_progress_bars=False)
    start = time.time()
    inference.append_simulations(theta, x).train()
    seconds = time.time() - start
    posterior = inference.build_posterior()
    scores = []
    for i in range(3):
        # An observation from the prior predictive, N(0, 0.2 I).
        x_o = torch.randn(1, dim, generator=torch.Generator().manual_seed(100 + i)) * 0.2**0.5
        reference = x_o / 2 + torch.randn(10_000, dim) * 0.05**0.5
        draws = posterior.sample((10_000,), x=x_o, show_progress_bars=False)
        scores.append(float(c2st(draws, reference)))
    print(
        f"p_mean {p_mean} seed {seed} n {n} c2st {[round(v, 3) for v in scores]} "
        f"mean {sum(scores) / 3:.3f} train {seconds:.0f}s",
        flush=True,
    )


if __name__ == "__main__":
    main(float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
