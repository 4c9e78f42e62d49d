"""Command line: `python -m sbi_cmpe.benchmark --tasks two_moons slcp --budgets 1000 10000`.

The scaling suite's dimension sweep (`sbi_cmpe.benchmark.scaling`):
`python -m sbi_cmpe.benchmark --suite scaling --dims 2 8 32 128 --budgets 10000`.
Its budget sweep is this suite at larger budgets, `--tasks two_moons slcp --budgets 1000
10000 100000`, whose `train_time_vs_budget.png` shows how each method's cost grows with N.
"""

from __future__ import annotations

import argparse
import tempfile
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
from sbi_cmpe.benchmark.scaling import ScalingSettings, run_scaling, scaling_report
from sbi_cmpe.benchmark.tasks import TASKS

# Options of one suite only (their defaults are `None`, so that giving them to the other
# suite is an error instead of being ignored).
SBIBM_ONLY = ("tasks", "steps", "sweep_observations", "batched_num_x", "batched_draws")
SCALING_ONLY = ("dims", "held_out", "calibration_draws")


def _or(value, default):
    return default if value is None else value


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(
        prog="python -m sbi_cmpe.benchmark",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--suite",
        choices=["sbibm", "scaling"],
        default="sbibm",
        help="sbibm: sbibm tasks (default); scaling: linear Gaussians of growing dimension",
    )
    parser.add_argument(
        "--tasks", nargs="+", default=None, choices=TASKS, help="default: two_moons"
    )
    parser.add_argument(
        "--budgets",
        nargs="+",
        type=int,
        default=None,
        help="default: 1000 10000 (sbibm), 10000 (scaling)",
    )
    parser.add_argument(
        "--dims",
        nargs="+",
        type=int,
        default=None,
        help="scaling suite: dimensions D (default: 2 8 32 128)",
    )
    parser.add_argument(
        "--held-out",
        type=int,
        default=None,
        help="scaling suite: held-out simulations for TARP (default: 200)",
    )
    parser.add_argument(
        "--calibration-draws",
        type=int,
        default=None,
        help="scaling suite: draws per held-out x for TARP (default: 1000)",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["cmpe", "npe_maf", "npe_nsf", "fmpe"],
        help=f"any of {', '.join(METHODS)}; CMPE variants as "
        "'cmpe:hidden_features=128,steps=5000'",
    )
    parser.add_argument("--observations", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument(
        "--out",
        default=None,
        help="default: benchmarks/results (sbibm), benchmarks/scaling/dims (scaling)",
    )
    parser.add_argument(
        "--steps",
        nargs="+",
        type=int,
        default=None,
        help="CMPE sampling steps swept (default: 1 2 3 5 10 20)",
    )
    parser.add_argument(
        "--sweep-observations", nargs="*", type=int, default=None, help="default: 1"
    )
    parser.add_argument("--num-draws", type=int, default=10_000)
    parser.add_argument("--batched-num-x", type=int, default=None, help="default: 100")
    parser.add_argument("--batched-draws", type=int, default=None, help="default: 1000")
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
        help="smoke run: two_moons, 300 simulations, 3 epochs, 500 draws (scaling suite: "
        "D 2 and 4, 300 simulations, 3 epochs, 500 draws, 20 held-out simulations); without "
        "--out it writes to a scratch folder, never to the committed results",
    )
    args = parser.parse_args(argv)
    if args.quick and args.out is None:
        args.out = str(Path(tempfile.gettempdir()) / "sbi_cmpe_quick" / args.suite)
    other = SCALING_ONLY if args.suite == "sbibm" else SBIBM_ONLY
    given = [f"--{name.replace('_', '-')}" for name in other if getattr(args, name) is not None]
    if given:
        parser.error(f"{', '.join(given)}: not an option of --suite {args.suite}")
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.suite == "scaling":
        return _scaling(args)
    settings = Settings(
        tasks=_or(args.tasks, ["two_moons"]),
        budgets=_or(args.budgets, [1_000, 10_000]),
        methods=args.methods,
        observations=args.observations,
        seeds=args.seeds,
        out=_or(args.out, "benchmarks/results"),
        num_draws=args.num_draws,
        sweep_steps=_or(args.steps, [1, 2, 3, 5, 10, 20]),
        sweep_observations=_or(args.sweep_observations, [1]),
        batched_draws=_or(args.batched_draws, 1_000),
        batched_num_x=_or(args.batched_num_x, 100),
        threads=args.threads,
        c2st_jobs=args.c2st_jobs,
    )
    if args.quick:
        settings.tasks, settings.budgets, settings.observations = ["two_moons"], [300], [1]
        settings.max_num_epochs, settings.num_draws, settings.sweep_steps = 3, 500, [1, 2]
        settings.batched_draws, settings.batched_num_x = 20, 5
    start = time.time()
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


def _scaling(args: argparse.Namespace) -> Path:
    """The scaling suite's dimension sweep, its report and table."""
    given = dict(
        dims=args.dims,
        budgets=args.budgets,
        out=args.out,
        held_out=args.held_out,
        calibration_draws=args.calibration_draws,
    )
    settings = ScalingSettings(
        methods=args.methods,
        observations=args.observations,
        seeds=args.seeds,
        num_draws=args.num_draws,
        threads=args.threads,
        c2st_jobs=args.c2st_jobs,
        **{name: value for name, value in given.items() if value is not None},
    )
    if args.quick:
        settings.dims, settings.budgets, settings.observations = [2, 4], [300], [1]
        settings.max_num_epochs, settings.num_draws, settings.held_out = 3, 500, 20
    start = time.time()
    csv_path = run_scaling(
        settings, progress=not args.no_progress, workers=args.workers, scheduler=args.scheduler
    )
    print(scaling_report(csv_path, settings.out))
    print(f"\nwall time {time.time() - start:.0f} s; results in {settings.out}/")
    return csv_path


if __name__ == "__main__":
    main()
