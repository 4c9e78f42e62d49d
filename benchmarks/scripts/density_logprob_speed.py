"""Time of `log_prob` for 1,000 theta at one x: CMPE with a density against FMPE.

Loads CMPE posteriors with a density cached by the benchmark in `OUT`
(`--methods cmpe:density=True`), trains sbi's FMPE on the same cached simulations (seed 0,
as the benchmark does) and times `log_prob` of 1,000 posterior draws at observation 1, best
of 3, one torch thread, each at its defaults; CMPE also at the earlier solver tolerance
1e-5, with the mean and largest change that the default makes to its log densities. The
leakage correction of a bounded prior is computed before the timing (sbi's FMPE and CMPE
both keep it per x).

    python benchmarks/scripts/density_logprob_speed.py OUT two_moons 1000 10000
"""

import sys
import time
import warnings

import torch
from sbi.inference import FMPE

from sbi_cmpe.benchmark.cache import posterior_path, simulations
from sbi_cmpe.benchmark.tasks import load_task


def best_of_three(posterior, theta, **kwargs) -> float:
    times = []
    for _ in range(3):
        start = time.perf_counter()
        posterior.log_prob(theta, **kwargs)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    out, task_name, budgets = sys.argv[1], sys.argv[2], [int(b) for b in sys.argv[3:]]
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    task = load_task(task_name)
    cache = f"{out}/cache"
    for budget in budgets:
        theta, x = simulations(task, budget, 0, cache)
        path = posterior_path(cache, task_name, budget, "cmpe:density=True", 0)
        cmpe = torch.load(path, weights_only=False).posterior
        torch.manual_seed(0)
        trainer = FMPE(task.prior, show_progress_bars=False)
        trainer.append_simulations(theta, x).train()
        fmpe = trainer.build_posterior()
        x_o = task.observation(1)
        for name, posterior in (("CMPE (density)", cmpe), ("FMPE", fmpe)):
            posterior.set_default_x(x_o)
            draws = posterior.sample((1000,), show_progress_bars=False)
            posterior.log_prob(draws[:10])  # warm-up, leakage correction
            seconds = best_of_three(posterior, draws)
            print(f"{task_name} {budget:,} {name}: log_prob of 1,000 theta {seconds:.2f} s")
            if posterior is cmpe:
                tight = dict(atol=1e-5, rtol=1e-5)
                seconds = best_of_three(cmpe, draws, **tight)
                change = (cmpe.log_prob(draws) - cmpe.log_prob(draws, **tight)).abs()
                print(
                    f"{task_name} {budget:,} {name} at tolerance 1e-5: {seconds:.2f} s; "
                    f"change of the default: mean {change.mean():.4f}, largest "
                    f"{change.max():.4f} nats"
                )


if __name__ == "__main__":
    main()
