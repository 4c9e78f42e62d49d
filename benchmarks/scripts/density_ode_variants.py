"""Network calls and time of CMPE's `log_prob` for variants of its probability-flow ODE.

Variants: the full network on repeated x (`shared=False`) or x's and t's terms computed once
per call (`shared=True`, `sbi_cmpe.sampling_net`); the ODE in theta (`scaled=False`) or in
y = theta / sqrt(1 + t^2) (`scaled=True`, tried, not adopted) or in y = theta / t against
r = -1 / t (`inverse=True`: dy/dr = -D(y t, t), the denoiser itself, nearly constant at small t;
log q(theta) = log p_y(theta / eps) - D log eps); solver tolerance 1e-5, 1e-4 and 1e-3.
Changes in nats are against the adopted ODE at tolerance 1e-6. Two moons, 1,000 simulations,
seed 0, observation 1, 1,000 draws of the posterior, one torch thread. Last, the calls of
sbi's FMPE `log_prob` (its defaults) at the same draws.

    python benchmarks/scripts/density_ode_variants.py OUT

OUT is a benchmark folder whose cache holds `--methods cmpe:density=True fmpe` for two
moons, 1,000 simulations, seed 0.
"""

import math
import sys
import time
import warnings

import torch
import zuko.transforms
from zuko.distributions import DiagNormal, NormalizingFlow

import sbi_cmpe.density as density
from sbi_cmpe.benchmark.cache import posterior_path
from sbi_cmpe.benchmark.tasks import load_task
from sbi_cmpe.sampling_net import shared_condition_net

CALLS = [0]
_init = zuko.transforms.FreeFormJacobianTransform.__init__


def counting_init(self, f, *args, **kwargs):
    """Counts the calls of the ODE's right-hand side."""

    def counted(t, x):
        CALLS[0] += 1
        return f(t, x)

    _init(self, counted, *args, **kwargs)


class _Scaled:
    """The density of theta = eps * y from a flow of y."""

    def __init__(self, flow, eps: float, dim: int):
        self.flow, self.eps, self.dim = flow, eps, dim

    def log_prob(self, theta):
        return self.flow.log_prob(theta / self.eps) - self.dim * math.log(self.eps)


def variant(shared: bool, scaled: bool, inverse: bool = False):
    """A replacement of `density._flow` for one variant."""

    def flow(estimator, condition, num, exact, atol, rtol):
        dim, schedule = estimator.input_shape.numel(), estimator.schedule
        embedded = estimator._embed(condition)
        rows = embedded.repeat(num, 1)
        mean, var = density._blurred_moments(estimator, embedded.detach(), dim)
        network = shared_condition_net(estimator.net, embedded)

        def denoise(theta, s):
            t = s.exp().expand(theta.shape[0])
            if shared:
                return estimator._denoiser_head(theta, t, network(theta, float(s)))
            return estimator.denoiser(theta, t, rows)

        if inverse:
            eps, t_max = schedule.eps, schedule.T

            def inverse_velocity(r, y):
                t = -1.0 / r
                return -denoise(y * t, t.log())

            transform = zuko.transforms.FreeFormJacobianTransform(
                f=inverse_velocity,
                t0=-1.0 / eps,
                t1=-1.0 / t_max,
                phi=(rows,),
                atol=atol,
                rtol=rtol,
                exact=True,
            )
            std = (var + t_max**2).sqrt()
            base = DiagNormal(mean.repeat(num, 1) / t_max, std.repeat(num, 1) / t_max)
            return _Scaled(NormalizingFlow(transform, base), eps, dim)

        def velocity(s, state):
            if not scaled:
                return state - denoise(state, s)
            c2 = 1 + (2 * s).exp()
            theta = state * c2.sqrt()
            return (theta / c2 - denoise(theta, s)) / c2.sqrt()

        transform = zuko.transforms.FreeFormJacobianTransform(
            f=velocity,
            t0=math.log(schedule.eps),
            t1=math.log(schedule.T),
            phi=(rows,),
            atol=atol,
            rtol=rtol,
            exact=True,
        )
        scale = math.sqrt(1 + schedule.T**2) if scaled else 1.0
        std = (var + schedule.T**2).sqrt()
        return NormalizingFlow(
            transform, DiagNormal(mean.repeat(num, 1) / scale, std.repeat(num, 1) / scale)
        )

    return flow


def print_tolerances(label: str, posterior, draws, reference) -> None:
    """Calls, seconds and change against `reference` of `log_prob(draws)` at tolerances
    1e-5, 1e-4 and 1e-3, one line each."""
    for tol in (1e-5, 1e-4, 1e-3):
        CALLS[0] = 0
        start = time.perf_counter()
        log_prob = posterior.log_prob(draws, atol=tol, rtol=tol)
        seconds = time.perf_counter() - start
        change = (log_prob - reference).abs()
        print(
            f"{label} tol={tol:g}: {CALLS[0]} calls {seconds:.2f} s "
            f"change mean {change.mean():.4f} largest {change.max():.4f}",
            flush=True,
        )


def print_fmpe_calls(out: str, x_o, draws) -> None:
    """Calls and seconds of the benchmark's FMPE `log_prob` (two moons, 1,000 simulations,
    seed 0) at `draws` for `x_o`."""
    path = posterior_path(f"{out}/cache", "two_moons", 1000, "fmpe", 0)
    fmpe = torch.load(path, weights_only=False).posterior
    fmpe.set_default_x(x_o)
    fmpe.log_prob(draws[:3])
    CALLS[0] = 0
    start = time.perf_counter()
    fmpe.log_prob(draws)
    print(f"FMPE: {CALLS[0]} calls {time.perf_counter() - start:.2f} s", flush=True)


def main() -> None:
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    zuko.transforms.FreeFormJacobianTransform.__init__ = counting_init
    task = load_task("two_moons")
    path = posterior_path(f"{sys.argv[1]}/cache", "two_moons", 1000, "cmpe:density=True", 0)
    posterior = torch.load(path, weights_only=False).posterior
    posterior.set_default_x(task.observation(1))
    torch.manual_seed(0)
    draws = posterior.sample((1000,), show_progress_bars=False)
    posterior.log_prob(draws[:3])  # leakage correction, kept per x
    reference = posterior.log_prob(draws, atol=1e-6, rtol=1e-6)
    variants = [(False, False, False), (True, False, False), (False, True, False)]
    variants += [(True, True, False), (True, False, True)]
    for shared, scaled, inverse in variants:
        density._flow = variant(shared, scaled, inverse)
        label = f"shared={shared} scaled={scaled} inverse={inverse}"
        print_tolerances(label, posterior, draws, reference)
    print_fmpe_calls(sys.argv[1], task.observation(1), draws)


if __name__ == "__main__":
    main()
