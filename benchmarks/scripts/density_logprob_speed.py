"""Time of `log_prob` for 1,000 theta at one x: CMPE with a density against FMPE.

Loads the CMPE posteriors with a density (`--methods cmpe:density=True`) and the FMPE
posteriors that the benchmark cached in `OUT` for seed 0 (trained on the same simulations),
and times `log_prob` of the same 1,000 theta, drawn from the reference posterior, at each of
the given observations: one torch thread, each method at its defaults, the two methods
alternating, best of 5. The leakage correction of a bounded prior is computed before the
timing (sbi's FMPE and CMPE both keep it per x). Also prints the network calls of the first
timed solve and, for CMPE, the mean and largest change of its log densities against the
solver tolerance 1e-6.

    python benchmarks/scripts/density_logprob_speed.py OUT TASK BUDGET [BUDGET ...] \
        [--observations 1 2 3 4 5]
"""

import argparse
import time
import warnings

import torch
import zuko.transforms
from density_ode_variants import CALLS, counting_init  # the scripts' call counter

from sbi_cmpe.benchmark.cache import posterior_path
from sbi_cmpe.benchmark.tasks import load_task


def timed(posterior, theta) -> float:
    start = time.perf_counter()
    posterior.log_prob(theta)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("task")
    parser.add_argument("budgets", type=int, nargs="+")
    parser.add_argument("--observations", type=int, nargs="+", default=[1])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    zuko.transforms.FreeFormJacobianTransform.__init__ = counting_init
    task = load_task(args.task)
    cache = f"{args.out}/cache"
    print(
        "task,budget,observation,cmpe_s,fmpe_s,ratio,cmpe_calls,fmpe_calls,change_mean,change_max"
    )
    for budget in args.budgets:
        posteriors = {}
        for name, method in (("cmpe", "cmpe:density=True"), ("fmpe", "fmpe")):
            path = posterior_path(cache, args.task, budget, method, 0)
            posteriors[name] = torch.load(path, weights_only=False).posterior
        for obs in args.observations:
            x_o = task.observation(obs)
            theta = task.reference_samples(obs, 1000)
            calls, best = {}, {}
            for name, posterior in posteriors.items():
                posterior.set_default_x(x_o)
                posterior.log_prob(theta[:10])  # warm-up, leakage correction
                CALLS[0] = 0
                best[name] = [timed(posterior, theta)]
                calls[name] = CALLS[0]
            for _ in range(args.repeats - 1):
                for name, posterior in posteriors.items():
                    best[name].append(timed(posterior, theta))
            cmpe_s, fmpe_s = min(best["cmpe"]), min(best["fmpe"])
            cmpe = posteriors["cmpe"]
            change = (cmpe.log_prob(theta) - cmpe.log_prob(theta, atol=1e-6, rtol=1e-6)).abs()
            print(
                f"{args.task},{budget},{obs},{cmpe_s:.3f},{fmpe_s:.3f},{cmpe_s / fmpe_s:.2f},"
                f"{calls['cmpe']},{calls['fmpe']},{change.mean():.4f},{change.max():.4f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
