"""Sampling and training times, measured back to back in one process.

The benchmark times each method right after training it, so its timings depend on what
else ran on the machine at that moment (and this machine's speed drifts by tens of percent
over hours). This module loads every cached posterior of a benchmark folder and times them
one after the other, best of `repeats`, for a fair comparison of sampling speed; with
`--training` it trains the methods again on the cached simulations, one after the other
for each (task, budget), and compares their training times:

    python -m sbi_cmpe.benchmark.timing --out benchmarks/results
    python -m sbi_cmpe.benchmark.timing --out benchmarks/results --training --methods cmpe fmpe
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

from sbi_cmpe.benchmark.cache import (
    cached_posteriors,
    cached_simulations,
    simulations,
    train_seeded,
)
from sbi_cmpe.benchmark.clock import best_of, time_sample_batched
from sbi_cmpe.benchmark.methods import METHODS, Trained
from sbi_cmpe.benchmark.report import LABELS
from sbi_cmpe.benchmark.tasks import load_task

__all__ = ["time_cached_posteriors", "time_training", "timing_table", "training_table"]


def time_cached_posteriors(
    out: str | Path,
    num_draws: int = 10_000,
    batched_draws: int = 1_000,
    batched_num_x: int = 100,
    repeats: int = 3,
    max_single_s: float = 5.0,
    max_batched_s: float = 30.0,
    batched: bool = True,
    methods: Optional[Sequence[str]] = None,
) -> List[Dict]:
    """Time `sample` and `sample_batched` for every cached posterior in `<out>/cache`.

    Arguments:
        out: A benchmark output folder.
        num_draws: Draws for one x (observation 1).
        batched_draws: Draws per x for `sample_batched`.
        batched_num_x: Number of x for `sample_batched` (prior predictive, seed 0).
        repeats: Timings of `num_draws` draws; the best is kept (`sample_batched` is
            timed once).
        max_single_s: `sample_batched` is skipped when `num_draws` draws take longer.
        max_batched_s: Time limit of `sample_batched` (prior-support rejection can be
            slow); a time at this limit means it was cut short.
        batched: Whether `sample_batched` is timed at all.
        methods: Methods to time; `None` for all cached ones.

    Returns:
        One dict per posterior: task, budget, method, seed, seconds for `num_draws`
        draws and for `sample_batched` (`nan` where skipped).
    """
    rows = []
    for cached in cached_posteriors(Path(out, "cache")):
        if cached.method not in METHODS or (methods is not None and cached.method not in methods):
            continue  # variants ("cmpe:steps=5000") are not timed
        trained: Trained = torch.load(cached.path, weights_only=False)
        task = load_task(cached.task)
        posterior, x_o = trained.posterior, task.observation(1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            posterior.sample((100,), x=x_o, show_progress_bars=False)  # warm-up
            single = best_of(
                posterior.sample, repeats, (num_draws,), x=x_o, show_progress_bars=False
            )
            batched_s = float("nan")
            if batched and single <= max_single_s:  # once: long, and may hit the limit
                batched_s, _ = time_sample_batched(
                    posterior, task, batched_draws, batched_num_x, max_batched_s
                )
        rows.append(
            dict(
                task=cached.task,
                budget=cached.budget,
                method=cached.method,
                seed=cached.seed,
                sample_s=single,
                batched_s=batched_s,
            )
        )
    return rows


def time_training(
    out: str | Path,
    methods: Sequence[str] = ("cmpe", "fmpe"),
    tasks: Optional[Sequence[str]] = None,
    seed: int = 0,
    max_num_epochs: Optional[int] = None,
) -> List[Dict]:
    """Train `methods` one after the other on each cached simulation set of `<out>/cache`.

    Each run starts from `torch.manual_seed(seed)`, as in the benchmark: it is the
    benchmark's training run with the current code and defaults.

    Arguments:
        out: A benchmark output folder.
        methods: Methods to train, in this order for each (task, budget).
        tasks: Tasks to include; `None` for all with cached simulations.
        seed: Seed of the simulations and of the training runs.
        max_num_epochs: Cap on epochs (for smoke runs); `None` keeps the defaults.

    Returns:
        One dict per run: task, budget, method, seed, training seconds, epochs and
        optimizer steps.

    Raises:
        FileNotFoundError: When `<out>/cache` holds no simulations of `seed` (and `tasks`).
    """
    rows = []
    for cached in cached_simulations(Path(out, "cache"), seed):
        if tasks is not None and cached.task not in tasks:
            continue
        task = load_task(cached.task)
        theta, x = simulations(task, cached.budget, seed, cached.path.parent)  # cached
        for method in methods:
            trained = train_seeded(task, method, theta, x, seed, max_num_epochs)
            rows.append(
                dict(
                    task=cached.task,
                    budget=cached.budget,
                    method=method,
                    seed=seed,
                    train_s=trained.train_time_s,
                    epochs=trained.epochs,
                    steps=trained.optimizer_steps,
                )
            )
    if not rows:
        raise FileNotFoundError(
            f"No cached simulations sims_<task>_<budget>_{seed}.pt"
            + (f" of tasks {list(tasks)}" if tasks is not None else "")
            + f" in {Path(out, 'cache')}."
        )
    return rows


def training_table(rows: List[Dict]) -> str:
    """Markdown table of `time_training` rows: seconds per method and each method's ratio
    to the last one."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    labels = [LABELS.get(m, m) for m in methods]
    ratios = [f"{label} / {labels[-1]}" for label in labels[:-1]]
    header = ["task", "budget", *(f"{label} (s)" for label in labels), *ratios]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    cells: Dict[tuple, Dict[str, float]] = {}
    for r in rows:
        cells.setdefault((r["task"], r["budget"]), {})[r["method"]] = r["train_s"]
    for (task, budget), secs in sorted(cells.items()):
        times = [secs.get(m, float("nan")) for m in methods]
        shares = [f"{t / times[-1]:.2f}" for t in times[:-1]]
        values = " | ".join([*(f"{t:.2f}" for t in times), *shares])
        lines.append(f"| {task} | {budget:,} | {values} |")
    return "\n".join(lines)


def timing_table(rows: List[Dict], max_batched_s: float = 30.0) -> str:
    """Markdown table of `time_cached_posteriors` rows ("n/a": not timed)."""
    lines = [
        "| task | budget | method | 10k draws (s) | batched (s) |",
        "|---|---:|---|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: (r["task"], r["budget"], r["method"])):
        batched = "n/a" if r["batched_s"] != r["batched_s"] else f"{r['batched_s']:.2f}"
        batched = f"> {max_batched_s:.0f} (limit)" if r["batched_s"] == float("inf") else batched
        lines.append(
            f"| {r['task']} | {r['budget']:,} | {LABELS.get(r['method'], r['method'])} | "
            f"{r['sample_s']:.3f} | {batched} |"
        )
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> str:
    """Command line: time the cached posteriors (or, with `--training`, the training runs)
    of a benchmark folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--methods", nargs="*", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--no-batched", action="store_true", help="time `sample` only")
    parser.add_argument(
        "--training", action="store_true", help="train --methods again, back to back"
    )
    parser.add_argument("--tasks", nargs="*", default=None, help="with --training")
    parser.add_argument("--seed", type=int, default=0, help="with --training")
    parser.add_argument("--max-num-epochs", type=int, default=None, help="with --training")
    args = parser.parse_args(argv)
    if not args.training and (
        args.tasks is not None or args.seed != 0 or args.max_num_epochs is not None
    ):
        parser.error("--tasks, --seed and --max-num-epochs apply only with --training")
    torch.set_num_threads(args.threads)
    if args.training:
        methods = args.methods or ["cmpe", "fmpe"]
        rows = time_training(
            args.out,
            methods,
            tasks=args.tasks,
            seed=args.seed,
            max_num_epochs=args.max_num_epochs,
        )
        table = training_table(rows)
        Path(args.out, "training_timing.md").write_text(table + "\n")
        print(table)
        return table
    rows = time_cached_posteriors(
        args.out,
        methods=args.methods,
        repeats=args.repeats,
        batched=not args.no_batched,
    )
    table = timing_table(rows)
    Path(args.out, "timing.md").write_text(table + "\n")
    print(table)
    return table


if __name__ == "__main__":
    main()
