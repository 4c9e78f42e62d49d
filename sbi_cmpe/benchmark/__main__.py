"""Command line: `python -m sbi_cmpe.benchmark --tasks two_moons slcp --budgets 1000 10000`."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from sbi_cmpe.benchmark.methods import METHODS
from sbi_cmpe.benchmark.report import (
    before_after_table,
    markdown_table,
    plot,
    steps_table,
    targets_table,
)
from sbi_cmpe.benchmark.run import Settings, run_benchmark
from sbi_cmpe.benchmark.tasks import SBIBM_TASKS


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(prog="python -m sbi_cmpe.benchmark", description=__doc__)
    parser.add_argument("--tasks", nargs="+", default=["two_moons"], choices=SBIBM_TASKS)
    parser.add_argument("--budgets", nargs="+", type=int, default=[1_000, 10_000])
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["cmpe", "npe_maf", "npe_nsf", "fmpe"],
        help=f"any of {', '.join(METHODS)}; CMPE variants as "
        "'cmpe:hidden_features=128,steps=5000'",
    )
    parser.add_argument("--observations", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument(
        "--steps",
        nargs="+",
        type=int,
        default=[1, 2, 3, 5, 10, 20],
        help="CMPE sampling steps swept",
    )
    parser.add_argument("--sweep-observations", nargs="*", type=int, default=[1])
    parser.add_argument("--num-draws", type=int, default=10_000)
    parser.add_argument("--batched-num-x", type=int, default=100)
    parser.add_argument("--batched-draws", type=int, default=1_000)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--c2st-jobs", type=int, default=1, help="jobs of the C2ST forest")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=int,
        default=None,
        help="run the jobs on a local Dask cluster of N worker processes (default: here, one "
        "by one)",
    )
    where.add_argument(
        "--scheduler",
        default=None,
        help="address of a running Dask scheduler to send the jobs to (its workers must see "
        "--out)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: two_moons, 300 simulations, 3 epochs, 500 draws",
    )
    args = parser.parse_args(argv)
    settings = Settings(
        tasks=args.tasks,
        budgets=args.budgets,
        methods=args.methods,
        observations=args.observations,
        seeds=args.seeds,
        out=args.out,
        num_draws=args.num_draws,
        sweep_steps=args.steps,
        sweep_observations=args.sweep_observations,
        batched_draws=args.batched_draws,
        batched_num_x=args.batched_num_x,
        threads=args.threads,
        c2st_jobs=args.c2st_jobs,
    )
    if args.quick:
        settings.tasks, settings.budgets, settings.observations = ["two_moons"], [300], [1]
        settings.max_num_epochs, settings.num_draws, settings.sweep_steps = 3, 500, [1, 2]
        settings.batched_draws, settings.batched_num_x = 20, 5
    start = time.time()
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1")
    csv_path = run_benchmark(
        settings, progress=not args.no_progress, workers=args.workers, scheduler=args.scheduler
    )
    table = markdown_table(csv_path) + "\n\nCMPE sampling steps:\n\n" + steps_table(csv_path)
    table += "\n\nCMPE against the baselines:\n\n" + targets_table(csv_path)
    before = Path(settings.out) / "results_before.csv"
    if before.exists():  # the rows of an earlier release's defaults, kept for comparison
        table += "\n\nCMPE before and after (results_before.csv):\n\n"
        table += before_after_table(before, csv_path)
    (Path(settings.out) / "results.md").write_text(table + "\n")
    plot(csv_path, settings.out)
    print(table)
    print(f"\nwall time {time.time() - start:.0f} s; results in {settings.out}/")
    return csv_path


if __name__ == "__main__":
    main()
