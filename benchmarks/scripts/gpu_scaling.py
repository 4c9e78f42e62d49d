"""GPU timings of the scaling suite (issue 18): training and sampling on cuda at D = 128 (the
dimension sweep's linear Gaussian) and on the 8x8 digits, both at 10,000 simulations.

The simulations, training seed (0), observations and metrics are the suite's
(`sbi_cmpe.benchmark.scaling`, `sbi_cmpe.benchmark.images`); only the device differs. The
jobs run one by one in the order of `JOBS`; a job starts only when its training time,
estimated from its CPU time in the suite's tables and the slowest GPU/CPU ratio seen so far,
ends before `GPU_DEADLINE_S` seconds (default 500) from the start. One JSON line per job goes
to the file named by the first argument (default `gpu_scaling.jsonl`). `GPU_JOBS` (e.g.
`images:fmpe,d128:fmpe`) runs those jobs in that order instead; `GPU_RATIO` sets the first
GPU/CPU ratio of the estimate (default 0.3).

Run from the repository root on the GPU machine: `python benchmarks/scripts/gpu_scaling.py
$OUT/gpu_scaling.jsonl`. `GPU_SMOKE=1` runs every job for 2 epochs on a tenth of the
simulations with few draws and 5 held-out x, on the CPU when there is no GPU (a check of
this script).
"""

import json
import os
import sys
import time
import traceback
import warnings
from pathlib import Path

import sbi
import torch
from torch.distributions import MultivariateNormal

from sbi_cmpe.benchmark import images, scaling
from sbi_cmpe.benchmark.cache import simulations
from sbi_cmpe.benchmark.images import DigitsPrior, digits_task, image_metrics, split_digits
from sbi_cmpe.benchmark.methods import train_method
from sbi_cmpe.benchmark.scaling import _accuracy, exact_posterior, linear_gaussian_task

# (suite, method, training seconds of the suite's CPU row at 10,000 simulations)
JOBS = [
    ("d128", "cmpe", 68.2),
    ("images", "cmpe", 101.0),
    ("d128", "npe_maf", 185.6),
    ("images", "fmpe", 519.0),
    ("d128", "fmpe", 464.0),
    ("images", "npe_nsf", 710.0),
    ("d128", "npe_nsf", 585.2),
]
if os.environ.get("GPU_JOBS"):  # e.g. "images:fmpe,d128:fmpe": these, in this order
    CPU_S = {(suite, method): s for suite, method, s in JOBS}
    JOBS = [
        (*job, CPU_S[job])
        for job in (tuple(j.split(":")) for j in os.environ["GPU_JOBS"].split(","))
    ]
SMOKE = os.environ.get("GPU_SMOKE") == "1"
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
BUDGET, SEED, DIM = (1_000 if SMOKE else 10_000), 0, 128
DRAWS, HELD_OUT = (200, 5) if SMOKE else (10_000, 200)


def sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def clock(fn):
    """(result, seconds) of `fn()`, the device synchronized before the clock stops."""
    sync()
    start = time.perf_counter()
    out = fn()
    sync()
    return out, time.perf_counter() - start


def train(method, prior, theta, x, embedding=None):
    torch.manual_seed(SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        epochs = 2 if SMOKE else None
        return train_method(method, prior, theta, x, epochs, embedding, device=DEVICE)


def run_d128(method: str) -> dict:
    task = linear_gaussian_task(DIM)
    theta, x = simulations(task, BUDGET, SEED, Path("/tmp/gpu_scaling_cache"))
    prior = MultivariateNormal(torch.zeros(DIM, device=DEVICE), torch.eye(DIM, device=DEVICE))
    result = train(method, prior, theta, x)
    posterior, quiet = result.posterior, dict(show_progress_bars=False)
    posterior.sample((100,), x=task.observation(1).to(DEVICE), **quiet)  # warm-up
    w2, times = [], []
    for obs in range(1, 6):
        x_o = task.observation(obs)  # (1, D)
        torch.manual_seed(scaling._sampling_seed(SEED, obs))
        x_dev = x_o.to(DEVICE)
        draws, seconds = clock(lambda x_dev=x_dev: posterior.sample((DRAWS,), x=x_dev, **quiet))
        w2.append(_accuracy(draws.cpu(), exact_posterior(DIM, x_o))["w2"])
        times.append(seconds)
    torch.manual_seed(7_919 + DIM)
    held = task.simulator(task.prior.sample((HELD_OUT,))).to(DEVICE)  # (200, D)
    _, batched = clock(lambda: posterior.sample_batched((1_000,), x=held, **quiet))
    return dict(
        w2=round(sum(w2) / len(w2), 4), sample_time_10k_s=round(sum(times) / len(times), 4),
        batched_200x1000_s=round(batched, 3), **cost(result),
    )  # fmt: skip


def run_images(method: str) -> dict:
    task = digits_task(100)
    train_images, test = split_digits(100)  # (J, 64), (M, 64)
    theta, x = simulations(task, BUDGET, SEED, Path("/tmp/gpu_scaling_cache"))
    prior = DigitsPrior(train_images.to(DEVICE))
    result = train(method, prior, theta, x, task.embedding)
    posterior, quiet = result.posterior, dict(show_progress_bars=False)
    xs = torch.cat([task.observation(i) for i in range(1, 101)]).to(DEVICE)  # (M, 8, 8)
    torch.manual_seed(images._sampling_seed(SEED))
    draws = posterior.sample_batched((100 if SMOKE else 1_000,), x=xs, **quiet)  # (n, M, 64)
    metrics = {k: round(v, 4) for k, v in image_metrics(draws.cpu(), test).items()}
    _, seconds = clock(lambda: posterior.sample_batched((100,), x=xs, **quiet))
    return dict(**metrics, batched_100x100_s=round(seconds, 3), **cost(result))


def cost(result) -> dict:
    steps = getattr(result.posterior, "num_steps", "")
    return dict(
        train_time_s=round(result.train_time_s, 2), epochs=result.epochs,
        optimizer_steps=result.optimizer_steps, num_steps=steps,
    )  # fmt: skip


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "gpu_scaling.jsonl")
    deadline = float(os.environ.get("GPU_DEADLINE_S", "500"))
    name = torch.cuda.get_device_name(0) if DEVICE == "cuda" else "cpu"
    machine = f"{name}, {os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}"
    print(machine, "torch", torch.__version__, "sbi", sbi.__version__, flush=True)
    start = time.perf_counter()
    ratio = float(
        os.environ.get("GPU_RATIO", "0.3")
    )  # ratio: slowest GPU/CPU training time so far
    for suite, method, cpu_s in JOBS:
        elapsed = time.perf_counter() - start
        if not SMOKE and elapsed + 1.2 * ratio * cpu_s > deadline:
            print(f"skip {suite} {method}: about {ratio * cpu_s:.0f} s, {elapsed:.0f} s gone")
            continue
        try:
            row = (run_d128 if suite == "d128" else run_images)(method)
        except Exception:  # report and go on with the next job
            traceback.print_exc()
            continue
        ratio = max(ratio, row["train_time_s"] / cpu_s)
        row = dict(suite=suite, method=method, budget=BUDGET, seed=SEED, device=DEVICE,
                   machine=machine, torch=torch.__version__, sbi=sbi.__version__,
                   cpu_train_time_s=cpu_s, **row)  # fmt: skip
        print(json.dumps(row), flush=True)
        with out.open("a") as file:
            file.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
