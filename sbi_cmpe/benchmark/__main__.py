"""Command line: `python -m sbi_cmpe.benchmark --tasks two_moons slcp --budgets 1000 10000`.

The scaling suite's dimension sweep (`sbi_cmpe.benchmark.scaling`):
`python -m sbi_cmpe.benchmark --suite scaling --dims 2 8 32 128 --budgets 10000`.
Its budget sweep is this suite at larger budgets, `--tasks two_moons slcp --budgets 1000
10000 100000`, whose `train_time_vs_budget.png` shows how each method's cost grows with N.
Its images (`sbi_cmpe.benchmark.images`), denoising of 8x8 digits:
`python -m sbi_cmpe.benchmark --suite images --budgets 1000 10000`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sbi_cmpe.benchmark.images import ImageSettings, images_report, run_images
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

# The suites that take each option not taken by all (their defaults are `None`, so that
# giving one to another suite is an error instead of being ignored).
SUITE_OPTIONS = {
    **dict.fromkeys(
        ("tasks", "steps", "sweep_observations", "batched_num_x", "batched_draws"), ("sbibm",)
    ),
    "dims": ("scaling",),
    "calibration_draws": ("scaling",),
    "held_out": ("scaling", "images"),
    "observations": ("sbibm", "scaling"),
    "c2st_jobs": ("sbibm", "scaling"),
}


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
        choices=["sbibm", "scaling", "images"],
        default="sbibm",
        help="sbibm: sbibm tasks (default); scaling: linear Gaussians of growing dimension; "
        "images: denoising of 8x8 digits",
    )
    parser.add_argument(
        "--tasks", nargs="+", default=None, choices=TASKS, help="default: two_moons"
    )
    parser.add_argument(
        "--budgets",
        nargs="+",
        type=int,
        default=None,
        help="default: 1000 10000 (sbibm, images), 10000 (scaling)",
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
        help="scaling suite: held-out simulations for TARP (default: 200); images: held-out "
        "test digits (default: 100)",
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
        default=None,
        help=f"any of {', '.join(METHODS)}; CMPE variants as "
        "'cmpe:hidden_features=128,steps=5000' (default: cmpe npe_maf npe_nsf fmpe; images: "
        "exact cmpe npe_nsf fmpe, where exact is the exact posterior)",
    )
    parser.add_argument(
        "--observations", nargs="+", type=int, default=None, help="default: 1 2 3 4 5"
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument(
        "--out",
        default=None,
        help="default: benchmarks/results (sbibm), benchmarks/scaling/dims (scaling), "
        "benchmarks/scaling/images (images)",
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
    parser.add_argument(
        "--num-draws",
        type=int,
        default=None,
        help="posterior draws per observation (default: 10000; images: 1000 per test digit)",
    )
    parser.add_argument("--batched-num-x", type=int, default=None, help="default: 100")
    parser.add_argument("--batched-draws", type=int, default=None, help="default: 1000")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument(
        "--c2st-jobs", type=int, default=None, help="jobs of the C2ST forest (default: 1)"
    )
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
        "D 2 and 4, 300 simulations, 3 epochs, 500 draws, 20 held-out simulations; images: "
        "300 simulations, 3 epochs, 10 test digits, 50 draws); without --out it writes to a "
        "scratch folder, never to the committed results",
    )
    args = parser.parse_args(argv)
    if args.quick and args.out is None:
        args.out = str(Path(tempfile.gettempdir()) / "sbi_cmpe_quick" / args.suite)
    given = [
        f"--{name.replace('_', '-')}"
        for name, suites in SUITE_OPTIONS.items()
        if args.suite not in suites and getattr(args, name) is not None
    ]
    if given:
        parser.error(f"{', '.join(given)}: not an option of --suite {args.suite}")
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.suite == "images":
        return _images(args)
    args.methods = _or(args.methods, ["cmpe", "npe_maf", "npe_nsf", "fmpe"])
    args.observations = _or(args.observations, [1, 2, 3, 4, 5])
    args.num_draws = _or(args.num_draws, 10_000)
    args.c2st_jobs = _or(args.c2st_jobs, 1)
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


def _given(**options) -> dict:
    """The options given on the command line (those not `None`)."""
    return {name: value for name, value in options.items() if value is not None}


def _scaling(args: argparse.Namespace) -> Path:
    """The scaling suite's dimension sweep, its report and table."""
    settings = ScalingSettings(
        methods=args.methods,
        observations=args.observations,
        seeds=args.seeds,
        num_draws=args.num_draws,
        threads=args.threads,
        c2st_jobs=args.c2st_jobs,
        **_given(
            dims=args.dims,
            budgets=args.budgets,
            out=args.out,
            held_out=args.held_out,
            calibration_draws=args.calibration_draws,
        ),
    )
    if args.quick:
        settings.dims, settings.budgets, settings.observations = [2, 4], [300], [1]
        settings.max_num_epochs, settings.num_draws, settings.held_out = 3, 500, 20
    return _run(args, settings, run_scaling, scaling_report)


def _images(args: argparse.Namespace) -> Path:
    """The scaling suite's images (`--suite images`), their report and table."""
    settings = ImageSettings(
        seeds=args.seeds,
        threads=args.threads,
        **_given(
            budgets=args.budgets,
            methods=args.methods,
            out=args.out,
            num_test=args.held_out,
            num_draws=args.num_draws,
        ),
    )
    if args.quick:
        settings.budgets, settings.max_num_epochs, settings.num_test = [300], 3, 10
        settings.num_draws, settings.timing_draws = 50, 20
    return _run(args, settings, run_images, images_report)


def _run(args: argparse.Namespace, settings, run, report) -> Path:
    """Run a suite (`run(settings, ...)`), print its report (`report(csv, out)`) and time."""
    start = time.time()
    csv_path = run(
        settings, progress=not args.no_progress, workers=args.workers, scheduler=args.scheduler
    )
    print(report(csv_path, settings.out))
    print(f"\nwall time {time.time() - start:.0f} s; results in {settings.out}/")
    return csv_path


if __name__ == "__main__":
    main()
