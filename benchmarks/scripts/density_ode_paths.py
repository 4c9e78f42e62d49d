"""Network calls of CMPE's `log_prob` when its probability-flow ODE is solved in other variables.

The adopted ODE runs in s = ln t (`sbi_cmpe.density`). Tried against it, each an exact change
of variables of the same trajectories (so all agree as the tolerance shrinks):

- `power rho`: time u = t^(1 / rho), d theta / du = rho (theta - D(theta, t)) / u, for rho = 1
  (t itself), 2, 3 and 7 (EDM's sampling grid);
- `ot`: the straight path of flow matching, x = theta / (1 + t) at tau = t / (1 + t), where
  dx / dtau = (x - D(theta, t)) / tau: the velocity that FMPE learns, here from CMPE's denoiser.

Each is solved by zuko's `FreeFormJacobianTransform` (exact divergence) at tolerances 1e-5,
1e-4 and 1e-3, for 1,000 draws of the reference posterior at one observation; printed: the
network calls, the seconds (one timing) and the mean and largest change of the log densities
against the adopted ODE at tolerance 1e-6. Last, the calls of sbi's FMPE on the same draws.
One torch thread.

    python benchmarks/scripts/density_ode_paths.py OUT [OBSERVATION]

OUT is a benchmark folder whose cache holds `--methods cmpe:density=True fmpe` for two moons,
1,000 simulations, seed 0.
"""

import math
import sys
import warnings

import torch
import zuko.transforms
from density_ode_variants import counting_init, print_fmpe_calls, print_tolerances
from zuko.distributions import DiagNormal, NormalizingFlow

import sbi_cmpe.density as density
from sbi_cmpe.benchmark.cache import posterior_path
from sbi_cmpe.benchmark.tasks import load_task
from sbi_cmpe.sampling_net import shared_condition_net

ADOPTED = density._flow


class _Scaled:
    """The density of theta = x / a from a flow of x."""

    def __init__(self, flow: NormalizingFlow, a: float, dim: int) -> None:
        self.flow, self.a, self.dim = flow, a, dim

    def log_prob(self, theta: torch.Tensor) -> torch.Tensor:
        return self.flow.log_prob(theta * self.a) + self.dim * math.log(self.a)


def variant(name: str, rho: float = 1.0):
    """A replacement of `density._flow` that solves the ODE in another variable."""

    def flow(estimator, condition, num, exact, atol, rtol):
        dim, eps, t_max = (
            estimator.input_shape.numel(),
            estimator.schedule.eps,
            estimator.schedule.T,
        )
        embedded = estimator._embed(condition)
        rows = embedded.repeat(num, 1)
        mean, var = density._blurred_moments(estimator, embedded.detach(), dim)
        network = shared_condition_net(estimator.net, embedded)

        def denoise(theta, t):
            out = network(theta, float(t.log()))
            return estimator._denoiser_head(theta, t.expand(theta.shape[0]), out)

        def power(u, theta):
            return rho * (theta - denoise(theta, u**rho)) / u

        def straight(tau, x):
            t = tau / (1 - tau)
            return (x - denoise(x / (1 - tau), t)) / tau

        std = (var + t_max**2).sqrt()
        if name == "power":
            f, t0, t1, scale = power, eps ** (1 / rho), t_max ** (1 / rho), 1.0
        else:
            f, t0, t1, scale = straight, eps / (1 + eps), t_max / (1 + t_max), 1 + t_max
        transform = zuko.transforms.FreeFormJacobianTransform(
            f=f, t0=t0, t1=t1, phi=(rows,), atol=atol, rtol=rtol, exact=True
        )
        base = DiagNormal(mean.repeat(num, 1) / scale, std.repeat(num, 1) / scale)
        a = 1.0 if name == "power" else 1 / (1 + eps)
        return _Scaled(NormalizingFlow(transform, base), a, dim)

    return flow


def main() -> None:
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    zuko.transforms.FreeFormJacobianTransform.__init__ = counting_init
    out, observation = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1
    task = load_task("two_moons")
    path = posterior_path(f"{out}/cache", "two_moons", 1000, "cmpe:density=True", 0)
    posterior = torch.load(path, weights_only=False).posterior
    posterior.set_default_x(task.observation(observation))
    draws = task.reference_samples(observation, 1000)
    posterior.log_prob(draws[:3])  # leakage correction, kept per x
    reference = posterior.log_prob(draws, atol=1e-6, rtol=1e-6)
    variants = [("ln t", ADOPTED)] + [(f"power {r:g}", variant("power", r)) for r in (1, 2, 3, 7)]
    for label, flow in variants + [("ot", variant("ot"))]:
        density._flow = flow
        print_tolerances(label, posterior, draws, reference)
    density._flow = ADOPTED
    print_fmpe_calls(out, task.observation(observation), draws)


if __name__ == "__main__":
    main()
