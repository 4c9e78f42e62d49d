"""`map()` of CMPE's density at the solver tolerances 1e-5 (earlier default) and 1e-4.

Trains CMPE with the denoiser head as `density_baselines.py` does for seed 0 (sbi's 2-d linear
Gaussian, 5,000 simulations, one torch thread) and prints, at each observation, the distance
of `map()` (100 iterations from the best 4 of 300 starts, the starts' seed fixed) to the
analytic mode and its time, at both tolerances.

    python benchmarks/scripts/density_map_tolerance.py
"""

import time
import warnings

import torch
from sbi.simulators.linear_gaussian import (
    linear_gaussian,
    true_posterior_linear_gaussian_mvn_prior,
)
from torch.distributions import MultivariateNormal

import sbi_cmpe.density as density
from sbi_cmpe import CMPEInference, consistency_nn


def main() -> None:
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    dim, seed = 2, 0
    prior = MultivariateNormal(torch.zeros(dim), torch.eye(dim))
    shift, cov = torch.ones(dim), 0.3 * torch.eye(dim)
    torch.manual_seed(seed)
    theta = prior.sample((5000,))
    x = linear_gaussian(theta, shift, cov)
    torch.manual_seed(seed)
    inference = CMPEInference(
        prior, density_estimator=consistency_nn(density=True), show_progress_bars=False
    )
    inference.append_simulations(theta, x).train()
    posterior = inference.build_posterior()
    for value in (0.5, -1.0):
        x_o = torch.full((1, dim), value)
        truth = true_posterior_linear_gaussian_mvn_prior(
            x_o, shift, cov, torch.zeros(dim), torch.eye(dim)
        )
        posterior.set_default_x(x_o)
        for tolerance in (1e-5, 1e-4):
            density.ode_log_prob.__defaults__ = (None, tolerance, tolerance)
            torch.manual_seed(2000 + seed)
            start = time.perf_counter()
            mode = posterior.map(
                num_iter=100,
                num_to_optimize=4,
                num_init_samples=300,
                show_progress_bars=False,
                force_update=True,
            )
            print(
                f"x_o={value} tol={tolerance}: MAP error {(mode - truth.mean).norm():.4f} "
                f"({time.perf_counter() - start:.0f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
