"""BayesFlow 2.1's ConsistencyModel beside CMPE, on the benchmark's simulations.

Run from the repository root in sbi-cmpe's environment; it calls `bf_train.py` in
BayesFlow's own environment (`--bf-python`, see README.md here) once per (task, budget):

    python benchmarks/bayesflow/peer.py --config defaults --bf-python /work/bf312/bin/python
    python benchmarks/bayesflow/peer.py --config cmpe --bf-python /work/bf312/bin/python

- The simulations are the benchmark's cached ones (`--sims`, made again from their seed if
  missing), so BayesFlow trains on exactly what CMPE trained on.
- `--config defaults`: `BasicWorkflow.fit_offline` at BayesFlow's defaults (100 epochs, batch
  32, its learning-rate schedule, `ConsistencyModel()` with `total_steps` = epochs x
  batches) and its default 11 sampling steps.
- `--config cmpe`: the same, but CMPE's optimizer steps at CMPE's batch size (128) and CMPE's
  sampling steps, read from CMPE's default rows in `--cmpe-results`. BayesFlow cannot sample
  in one step (its time grid divides by steps - 1), so 1 becomes 2 there, with a note.
- Draws outside the prior's support are rejected before the C2ST, as sbi's posteriors and
  the benchmark's CMPE rows do; the time for 10,000 draws is that of BayesFlow's sampler
  alone (no rejection).
- Rows go to `<out>/<config>/results.csv` in the benchmark's format, method `bayesflow_cm`;
  a (task, budget) with rows is skipped (resumable).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import sbi
import torch
from sbi.utils.sbiutils import within_support

from sbi_cmpe import __version__
from sbi_cmpe.benchmark.cache import simulations
from sbi_cmpe.benchmark.run import benchmark_c2st
from sbi_cmpe.benchmark.store import append_rows, completed_rows
from sbi_cmpe.benchmark.suite import machine_description
from sbi_cmpe.benchmark.tasks import load_task

TASKS = ["two_moons", "gaussian_linear", "gaussian_mixture", "slcp", "bernoulli_glm"]
CMPE_BATCH = 128
BF_DEFAULTS = {"epochs": 100, "batch_size": 32, "steps": 11}


def cmpe_settings(path: Path) -> dict:
    """(task, budget) -> (optimizer steps, sampling steps) of CMPE's default rows."""
    out = {}
    for r in csv.DictReader(open(path)):
        if r["method"] == "cmpe" and r["num_steps"] == "default":
            out[(r["task"], int(r["budget"]))] = (
                int(r["optimizer_steps"]),
                int(r["calls_per_draw"]),
            )
    return out


def config_for(name: str, task: str, budget: int, cmpe: dict) -> tuple[dict, str]:
    """bf_train's config and the rows' note."""
    if name == "defaults":
        return dict(BF_DEFAULTS), "BayesFlow defaults: 100 epochs, batch 32, 11 steps"
    optimizer_steps, steps = cmpe[(task, budget)]
    batches = int(np.ceil(budget / CMPE_BATCH))
    epochs = max(1, round(optimizer_steps / batches))
    note = f"CMPE's budget: {epochs} epochs of batch {CMPE_BATCH}, CMPE's {steps} steps"
    if steps == 1:
        steps, note = 2, note + " (BayesFlow samples in 2: it cannot in 1)"
    return {"epochs": epochs, "batch_size": CMPE_BATCH, "steps": steps}, note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=["defaults", "cmpe"], required=True)
    parser.add_argument("--bf-python", required=True, help="python of BayesFlow's environment")
    parser.add_argument("--sims", default="benchmarks/auto_steps/cache")
    parser.add_argument("--cmpe-results", default="benchmarks/auto_steps/results.csv")
    parser.add_argument("--out", default="benchmarks/bayesflow")
    parser.add_argument("--tasks", nargs="+", default=TASKS)
    parser.add_argument("--budgets", nargs="+", type=int, default=[1_000, 10_000])
    parser.add_argument("--observations", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--draws", type=int, default=10_000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out) / args.config
    out.mkdir(parents=True, exist_ok=True)
    exchange = Path(args.out) / "cache"
    exchange.mkdir(parents=True, exist_ok=True)
    results = out / "results.csv"
    done = (
        {(r["task"], int(r["budget"])) for r in completed_rows(results)}
        if results.exists()
        else set()
    )
    cmpe = cmpe_settings(Path(args.cmpe_results)) if args.config == "cmpe" else {}
    # XLA on one thread, as the benchmark's methods run on one torch thread.
    env = dict(
        os.environ,
        KERAS_BACKEND="jax",
        JAX_PLATFORMS="cpu",
        XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    )
    for name in args.tasks:
        task = load_task(name)
        for budget in args.budgets:
            if (name, budget) in done:
                continue
            theta, x = simulations(task, budget, args.seed, Path(args.sims))
            observations = torch.cat([task.observation(i) for i in args.observations])
            source = exchange / f"{name}_{budget}_{args.seed}.npz"
            np.savez(source, theta=theta.numpy(), x=x.numpy(), observations=observations.numpy())
            cfg, note = config_for(args.config, name, budget, cmpe)
            cfg.update(draws=args.draws, seed=args.seed)
            target = exchange / f"{args.config}_{name}_{budget}_{args.seed}_out.npz"
            script = Path(__file__).with_name("bf_train.py")
            if not target.exists():  # a finished training is kept (resumable)
                command = [args.bf_python, str(script), str(source), str(target), json.dumps(cfg)]
                subprocess.run(command, check=True, env=env)
            result = np.load(target)
            per_draw = [float(t) / args.draws for t in result["sample_time_s"]]
            rows = []
            for j, obs in enumerate(args.observations):
                draws = torch.as_tensor(result["samples"][j]).float()
                finite = torch.isfinite(draws).all(1)
                inside = finite & within_support(task.prior, draws.nan_to_num())
                kept = draws[inside][: args.draws]
                reference = task.reference_samples(obs, args.draws)
                score = benchmark_c2st(kept, reference)
                row_note = f"{note}; {result['versions']}"
                if inside.float().mean() < 1:
                    outside = 100 * (1 - inside.float().mean())
                    row_note += f"; {outside:.1f}% of draws outside the prior rejected"
                rows.append(
                    dict(
                        task=name,
                        budget=budget,
                        method="bayesflow_cm",
                        seed=args.seed,
                        observation=obs,
                        num_steps=str(cfg["steps"]),
                        c2st=round(score, 4),
                        num_draws=len(kept),
                        train_time_s=round(float(result["train_time_s"]), 2),
                        epochs=cfg["epochs"],
                        optimizer_steps=int(result["optimizer_steps"]),
                        sample_time_10k_s=round(per_draw[j] * 10_000, 4),
                        batched_time_s="",
                        batched_draws="",
                        batched_num_x="",
                        calls_per_draw=cfg["steps"],
                        note=row_note,
                        torch_threads=1,
                        sbi=sbi.__version__,
                        torch="",
                        sbi_cmpe=__version__,
                        machine=machine_description(),
                        date=datetime.date.today().isoformat(),
                    )
                )
            append_rows(results, rows)
            print(name, budget, [r["c2st"] for r in rows], rows[0]["train_time_s"], flush=True)


if __name__ == "__main__":
    main()
