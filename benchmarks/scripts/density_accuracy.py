"""Accuracy of CMPE's density (`consistency_nn(density=True)`) on sbi's linear Gaussian.

Trains CMPE with the denoiser head on `--num-simulations` simulations of sbi's linear Gaussian
task (Gaussian prior, so the posterior is analytic), at the default budget, one torch thread,
and prints the training time, the sampling C2ST (sbi's random forest, 5,000 draws) and the
error of `log_prob` against the analytic log density over 500 posterior draws at two
observations (`--map`: and the largest error of `map()` per parameter, the true log
density's drop there, and in 2-d where on a grid around the analytic mode the learned density
peaks). `--dsm-noise loguniform` draws the denoising loss's noise levels log-uniformly on
[eps, T] in a second network call instead of reusing the student's (a tried alternative).

    python benchmarks/scripts/density_accuracy.py --dim 2 --num-simulations 5000
"""

import argparse
import math
import time
import warnings

import torch
from sbi.simulators.linear_gaussian import (
    linear_gaussian,
    true_posterior_linear_gaussian_mvn_prior,
)
from sbi.utils.metrics import c2st
from torch.distributions import MultivariateNormal

from sbi_cmpe import CMPEInference, ConsistencyEstimator, consistency_nn
from sbi_cmpe.consistency import consistency_loss
from sbi_cmpe.density import denoising_loss


def loguniform_joint_loss(self, theta, embedded_x, num_points, generator):
    """The joint loss with the denoising term at log-uniform noise levels (a second call)."""
    s = self.schedule
    loss = consistency_loss(
        self.consistency_function, theta, embedded_x, s.grid(num_points), s.p_mean, s.p_std,
        generator=generator,
    )  # fmt: skip
    u = torch.rand(theta.shape[0], device=theta.device)
    t = torch.exp(math.log(s.eps) + u * (math.log(s.T) - math.log(s.eps)))
    noisy = theta + t[:, None] * torch.randn_like(theta)
    out = self.net(noisy, embedded_x, t.log())
    return loss + self.denoiser_weight * denoising_loss(
        self._denoiser_head(noisy, t, out), theta, t
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=2)
    parser.add_argument("--num-simulations", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dsm-noise", choices=["student", "loguniform"], default="student")
    parser.add_argument("--map", action="store_true", help="also the error of map()")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    if args.dsm_noise == "loguniform":
        ConsistencyEstimator._joint_loss = loguniform_joint_loss
    dim = args.dim
    torch.manual_seed(args.seed)
    prior = MultivariateNormal(torch.zeros(dim), torch.eye(dim))
    shift, cov = torch.ones(dim), 0.3 * torch.eye(dim)
    theta = prior.sample((args.num_simulations,))
    x = linear_gaussian(theta, shift, cov)
    inference = CMPEInference(
        prior, density_estimator=consistency_nn(density=True), show_progress_bars=False
    )
    start = time.perf_counter()
    inference.append_simulations(theta, x).train()
    train_s = time.perf_counter() - start
    posterior = inference.build_posterior()
    print(
        f"dim {dim}, {args.num_simulations} simulations, seed {args.seed}, DSM noise "
        f"{args.dsm_noise}: training {train_s:.0f} s, {inference.optimizer_steps} steps"
    )
    for value in (0.5, -1.0):
        x_o = torch.full((1, dim), value)
        truth = true_posterior_linear_gaussian_mvn_prior(
            x_o, shift, cov, torch.zeros(dim), torch.eye(dim)
        )
        torch.manual_seed(1)
        samples = posterior.sample((5000,), x=x_o, show_progress_bars=False)
        score = c2st(samples, truth.sample((5000,))).item()
        draws = truth.sample((500,))
        start = time.perf_counter()
        log_prob = posterior.log_prob(draws, x=x_o)
        seconds = time.perf_counter() - start
        error = log_prob - truth.log_prob(draws)
        print(
            f"x_o = {value}: C2ST {score:.3f}; log_prob of 500 draws in {seconds:.2f} s, "
            f"mean absolute error {error.abs().mean():.3f} nats (median "
            f"{error.abs().median():.3f}, mean {error.mean():+.3f}, sd {error.std():.3f})"
        )
        if args.map:  # as tests/test_density.py calls it
            posterior.set_default_x(x_o)
            mode = posterior.map(num_iter=100, num_to_optimize=4, num_init_samples=300)
            # The learned density on a grid of step 0.02 around the analytic mode.
            offsets = torch.linspace(-0.4, 0.4, 41)
            grid = torch.stack(torch.meshgrid(offsets, offsets, indexing="ij"), -1)
            grid = truth.mean + grid.reshape(-1, 2) if dim == 2 else None
            line = (
                f"x_o = {value}: map() off the analytic mode by at most "
                f"{(mode - truth.mean).abs().max():.3f} per parameter, where the true log "
                f"density is {float(truth.log_prob(truth.mean) - truth.log_prob(mode)):.3f} "
                f"nats below its peak"
            )
            if grid is not None:
                on_grid = posterior.log_prob(grid)
                away = float((grid[on_grid.argmax()] - mode).abs().max())
                above = float(on_grid.max() - posterior.log_prob(mode))
                line += (
                    f"; the grid's highest learned density is {away:.3f} from map()'s point and "
                    f"{above:+.4f} nats above it"
                )
            print(line)


if __name__ == "__main__":
    main()
