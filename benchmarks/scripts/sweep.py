"""Tuning sweep on many CPU cores: one benchmark run per job, one torch thread each.

Reads, from the folder `$TUNE` (default `.tune/`, which git ignores): `bundle.pt` and
`sims/` (priors, observations, reference samples and simulations, made by
`benchmarks/scripts/make_bundle.py`) and `jobs.json`, a list of jobs
`[task, budget, method]` or `[task, budget, method, seed]` (seed 1 when not given). Each job
is one `run_benchmark` unit on observations 6-8 of the cached simulations, without the step
sweep and the batched timing; its rows are appended as JSON lines to `$OUT/sweep.jsonl`.
Jobs still running after `$SWEEP_DEADLINE_S` seconds are dropped. Run from the repository
root, then summarize with `python -m sbi_cmpe.benchmark.report $OUT/sweep.jsonl`:

    OUT=/tmp/sweep_out SWEEP_WORKERS=2 SWEEP_DEADLINE_S=5400 python benchmarks/scripts/sweep.py
    python benchmarks/scripts/sweep.py --smoke   # 2 epochs per job
"""

import csv
import json
import multiprocessing as mp
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

OUT = Path(os.environ.get("OUT", "/tmp/out"))
TUNE = Path(os.environ.get("TUNE", ".tune"))
DEADLINE = float(os.environ.get("SWEEP_DEADLINE_S", "480"))


def job(args):
    idx, name, budget, method, seed, smoke = args
    import torch

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    from sbi.utils import BoxUniform
    from torch.distributions import MultivariateNormal

    from sbi_cmpe.benchmark.run import Settings, run_benchmark
    from sbi_cmpe.benchmark.tasks import Task

    b = torch.load(TUNE / "bundle.pt")[name]
    kind, a, c = b["prior"]
    prior = BoxUniform(a, c) if kind == "box" else MultivariateNormal(a, scale_tril=c)

    def no_sim(theta):
        raise RuntimeError("simulations are cached")

    task = Task(name, prior, no_sim, lambda i: b["obs"][i], lambda i, n: b["ref"][i][:n])
    out = Path(f"/tmp/sweep/job{idx}")
    (out / "cache").mkdir(parents=True, exist_ok=True)
    shutil.copy(TUNE / "sims" / f"sims_{name}_{budget}_{seed}.pt", out / "cache")
    t0 = time.time()
    try:
        run_benchmark(
            Settings(
                tasks=[task],
                budgets=[budget],
                methods=[method],
                observations=[6, 7, 8],
                seeds=[seed],
                out=out,
                sweep_observations=(),
                batched_max_single_s=-1.0,
                max_num_epochs=2 if smoke else None,
            ),
            progress=False,
        )
        rows = list(csv.DictReader(open(out / "results.csv")))
    except Exception as err:  # keep going
        rows = [dict(task=name, budget=budget, method=method, note=f"error {err!r}")]
    with open(OUT / "sweep.jsonl", "a") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return idx, name, budget, method, seed, time.time() - t0


def main():
    smoke = "--smoke" in sys.argv
    listed = json.loads((TUNE / "jobs.json").read_text())
    jobs = [(i, j[0], j[1], j[2], j[3] if len(j) > 3 else 1, smoke) for i, j in enumerate(listed)]
    workers = int(os.environ.get("SWEEP_WORKERS", max(1, (os.cpu_count() or 2) - 1)))
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"{len(jobs)} jobs on {workers} workers", flush=True)
    start = time.time()
    with mp.get_context("fork").Pool(workers, maxtasksperchild=1) as pool:
        pending = [pool.apply_async(job, (j,)) for j in jobs]
        for p in pending:
            left = DEADLINE - (time.time() - start)
            if left <= 0:
                break
            try:
                print("done", p.get(timeout=left), round(time.time() - start), flush=True)
            except mp.TimeoutError:
                break
        pool.terminate()
    print("sweep wall", round(time.time() - start), flush=True)


if __name__ == "__main__":
    main()
