"""Does weighting the consistency distance by an estimate of each dimension's posterior
scale help CMPE resolve narrow posterior dimensions?

The distance d(student, teacher) of the consistency loss sums squared errors over the
(z-scored) parameter dimensions, so a dimension whose posterior is 10 times narrower than
its prior weighs its errors like a wide one although it needs 10 times finer ones. Here each
output dimension d is multiplied by w_d = 1 / r_d (normalised to mean w_d² = 1) before the
distance, where r_d is the residual standard deviation of a least-squares regression of the
z-scored theta_d on x (with intercept) over the training simulations: a per-dimension
posterior scale estimate from all the simulations. Only the training loss changes: validation
(the energy score of draws) and sampling do not. Needs `density=False` (the default).

Tuning seed 1 and observations the reported tables do not use: linear Gaussian D = 32, 128
(scaling suite, observations 6-8) and box_gaussian (observations 6-10), 10,000 simulations.
Usage (from the repository root; output in scale_weights.txt beside this file):
    python benchmarks/tuning/scale_weights/scale_weights.py \
        > benchmarks/tuning/scale_weights/scale_weights.txt
"""

import time
import warnings
from pathlib import Path

import torch

import sbi_cmpe.estimator as estimator_module
from sbi_cmpe import CMPEInference
from sbi_cmpe.benchmark.cache import simulations
from sbi_cmpe.benchmark.run import benchmark_c2st
from sbi_cmpe.benchmark.scaling import _accuracy, exact_posterior, linear_gaussian_task
from sbi_cmpe.benchmark.tasks import box_gaussian

CACHE = Path(__file__).parent / "cache"
SEED = 1
WEIGHTS = None  # (D,) while a weighted run trains
_plain_loss = estimator_module.consistency_loss


def _weighted_loss(f, theta, condition, grid, *args, **kwargs):
    if WEIGHTS is None:
        return _plain_loss(f, theta, condition, grid, *args, **kwargs)
    return _plain_loss(
        lambda th, t, c: f(th, t, c) * WEIGHTS, theta, condition, grid, *args, **kwargs
    )


estimator_module.consistency_loss = _weighted_loss


def scale_weights(theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    z = (theta - theta.mean(0)) / theta.std(0)  # (N, D), as the estimator z-scores
    design = torch.cat([x.reshape(len(x), -1), torch.ones(len(x), 1)], 1)  # (N, Dx + 1)
    coef = torch.linalg.lstsq(design.double(), z.double()).solution
    residual_sd = (z.double() - design.double() @ coef).std(0).float()  # (D,)
    w = 1 / residual_sd.clamp(min=1e-3)
    return w / w.square().mean().sqrt()


def train(task, weighted: bool):
    global WEIGHTS
    theta, x = simulations(task, 10_000, SEED, CACHE)
    WEIGHTS = scale_weights(theta, x) if weighted else None
    torch.manual_seed(SEED)
    inference = CMPEInference(task.prior, show_progress_bars=False)
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            inference.append_simulations(theta, x).train()
    finally:
        WEIGHTS = None
    seconds = time.perf_counter() - start
    return inference.build_posterior(), seconds


def main() -> None:
    torch.set_num_threads(1)
    for dim in (32, 128):
        task = linear_gaussian_task(dim)
        for weighted in (False, True):
            posterior, seconds = train(task, weighted)
            rows = []
            for obs in (6, 7, 8):
                x_o = task.observation(obs)
                torch.manual_seed(obs)
                draws = posterior.sample((10_000,), x=x_o, show_progress_bars=False)
                rows.append(_accuracy(draws, exact_posterior(dim, x_o)))
            means = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}
            text = ", ".join(f"{k} {v:.3f}" for k, v in means.items())
            print(
                f"linear Gaussian D={dim}, weighted={weighted}: {text}, "
                f"train {seconds:.0f} s, steps {posterior.num_steps}",
                flush=True,
            )
    task = box_gaussian()
    for weighted in (False, True):
        posterior, seconds = train(task, weighted)
        scores = []
        for obs in (6, 7, 8, 9, 10):
            torch.manual_seed(obs)
            draws = posterior.sample((10_000,), x=task.observation(obs), show_progress_bars=False)
            scores.append(benchmark_c2st(draws, task.reference_samples(obs, 10_000), 1))
        print(
            f"box_gaussian, weighted={weighted}: C2ST {sum(scores) / len(scores):.3f} "
            f"({', '.join(f'{s:.3f}' for s in scores)}), "
            f"train {seconds:.0f} s, steps {posterior.num_steps}",
            flush=True,
        )


if __name__ == "__main__":
    main()
