"""Time and peak memory of `sample_batched` over many x (issue 18, item 4).

One measurement per process, so that the peak resident memory (`ru_maxrss`) is that of one
call: run from the repository root,

    python benchmarks/scaling/batched_sampling.py --method cmpe --num-x 10000 --draws 1000

- The posterior is the benchmark's cached one of (task, budget, method, seed) in `--cache`
  (trained there on the cached simulations if missing).
- The x are simulated from prior draws after `torch.manual_seed(0)`, the same for every method.
- `--method cmpe_sbi_rejection` samples CMPE through sbi's `accept_reject_sample`, as
  `ConsistencyPosterior` did before its own rejection (`sbi_cmpe.rejection`): the "before".
- One row per call goes to `--out` (CSV): seconds, peak resident memory, memory before the
  call, the output's size, acceptance, one torch thread.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import resource
import time
from functools import partial
from pathlib import Path

import torch
from sbi.samplers.rejection import rejection
from sbi.utils.sbiutils import within_support

from sbi_cmpe.benchmark.cache import trained
from sbi_cmpe.benchmark.tasks import load_task


def rss_mb() -> float:
    """Resident memory of this process now, in MB (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def sbi_rejection(posterior, draws: int, x: torch.Tensor) -> torch.Tensor:
    """CMPE's draws through sbi's rejection loop (the code path before `sbi_cmpe.rejection`)."""
    chunk = 2_048
    draw = partial(posterior._draws, num_steps=posterior.num_steps, chunk=chunk)
    samples, _ = rejection.accept_reject_sample(
        proposal=draw,
        accept_reject_fn=lambda theta: within_support(posterior.prior, theta),
        num_samples=draws,
        show_progress_bars=False,
        max_sampling_batch_size=max(1, chunk // x.shape[0]),
        proposal_sampling_kwargs={"condition": x},
    )
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="cmpe")
    parser.add_argument("--task", default="two_moons")
    parser.add_argument("--budget", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cache", default="benchmarks/tuning/auto_steps/cache")
    parser.add_argument("--num-x", type=int, default=10_000)
    parser.add_argument("--draws", type=int, default=1_000)
    parser.add_argument("--out", default="benchmarks/scaling/batched/results.csv")
    args = parser.parse_args()
    torch.set_num_threads(1)
    task = load_task(args.task)
    method = "cmpe" if args.method == "cmpe_sbi_rejection" else args.method
    posterior = trained(task, args.budget, method, args.seed, Path(args.cache)).posterior
    torch.manual_seed(0)
    xs = task.simulator(task.prior.sample((args.num_x,)))
    before = rss_mb()
    torch.manual_seed(1)
    start = time.perf_counter()
    if args.method == "cmpe_sbi_rejection":
        samples = sbi_rejection(posterior, args.draws, xs)
    else:
        samples = posterior.sample_batched((args.draws,), x=xs, show_progress_bars=False)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux
    inside = within_support(task.prior, samples.reshape(-1, samples.shape[-1])).float().mean()
    row = dict(
        task=args.task,
        budget=args.budget,
        seed=args.seed,
        method=args.method,
        num_steps=getattr(posterior, "num_steps", ""),
        num_x=args.num_x,
        draws_per_x=args.draws,
        seconds=round(seconds, 2),
        peak_rss_mb=round(peak),
        rss_before_mb=round(before),
        output_mb=round(samples.numel() * samples.element_size() / 2**20),
        fraction_inside=round(float(inside), 4),
        shape="x".join(str(s) for s in samples.shape),
        torch_threads=1,
        torch=torch.__version__,
        machine=f"{platform.machine()} {os.cpu_count()} cores, {platform.system()}",
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    new = not out.exists()
    with open(out, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
    print(row, flush=True)


if __name__ == "__main__":
    main()
