"""CMPE's density against sbi's NPE (MAF, NSF) and FMPE trained on the same simulations.

sbi's linear Gaussian with a Gaussian prior (shift 1, likelihood covariance 0.3 I), so the
posterior is analytic. For each seed, `--num-simulations` simulations are drawn once and each
method trains on them with its defaults (CMPE with `consistency_nn(density=True)`), one torch
thread. At each observation x_o = (v, ..., v) it prints one CSV row per method: the error of
`log_prob` against the analytic log density over 500 posterior draws (mean absolute, median,
mean) and, with `--map`, the distance of `map()` (100 iterations from the best 4 of 300
starts) to the analytic mode.

    python benchmarks/scripts/density_baselines.py --dim 2 --seeds 0 1 2 3 4 --map
"""

import argparse
import time
import warnings

import torch
from sbi.inference import FMPE, NPE
from sbi.simulators.linear_gaussian import (
    linear_gaussian,
    true_posterior_linear_gaussian_mvn_prior,
)
from torch.distributions import MultivariateNormal

from sbi_cmpe import CMPEInference, consistency_nn

METHODS = ("cmpe", "fmpe", "npe_maf", "npe_nsf")


def trainer(method: str, prior):
    if method == "cmpe":
        return CMPEInference(
            prior, density_estimator=consistency_nn(density=True), show_progress_bars=False
        )
    if method == "fmpe":
        return FMPE(prior, show_progress_bars=False)
    return NPE(prior, density_estimator=method.split("_")[1], show_progress_bars=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=2)
    parser.add_argument("--num-simulations", type=int, default=5000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--observations", type=float, nargs="+", default=[0.5, -1.0])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--map", action="store_true", help="also measure map()")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    dim = args.dim
    prior = MultivariateNormal(torch.zeros(dim), torch.eye(dim))
    shift, cov = torch.ones(dim), 0.3 * torch.eye(dim)
    print("dim,seed,method,x_o,train_s,mae,median_ae,bias,log_prob_s,map_error", flush=True)
    for seed in args.seeds:
        torch.manual_seed(seed)
        theta = prior.sample((args.num_simulations,))
        x = linear_gaussian(theta, shift, cov)
        for method in args.methods:
            torch.manual_seed(seed)
            inference = trainer(method, prior)
            start = time.perf_counter()
            inference.append_simulations(theta, x).train()
            train_s = time.perf_counter() - start
            posterior = inference.build_posterior()
            for value in args.observations:
                x_o = torch.full((1, dim), value)
                truth = true_posterior_linear_gaussian_mvn_prior(
                    x_o, shift, cov, torch.zeros(dim), torch.eye(dim)
                )
                posterior.set_default_x(x_o)
                torch.manual_seed(1000 + seed)
                draws = truth.sample((500,))
                start = time.perf_counter()
                error = posterior.log_prob(draws) - truth.log_prob(draws)
                log_prob_s = time.perf_counter() - start
                map_error = float("nan")
                if args.map:
                    torch.manual_seed(2000 + seed)
                    mode = posterior.map(
                        num_iter=100,
                        num_to_optimize=4,
                        num_init_samples=300,
                        show_progress_bars=False,
                    )
                    map_error = (mode - truth.mean).norm().item()
                print(
                    f"{dim},{seed},{method},{value},{train_s:.1f},{error.abs().mean():.4f},"
                    f"{error.abs().median():.4f},{error.mean():.4f},{log_prob_s:.2f},"
                    f"{map_error:.4f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
