"""Running a suite's jobs: with its folder locked, resumable, here or on a Dask cluster.

Each suite (`sbi_cmpe.benchmark.run`, `.scaling`, `.images`) plans its jobs from the rows
already in its CSV, names the simulations they share and a `job -> rows` function;
`run_suite` does the rest: the lock (`sbi_cmpe.benchmark.store.FolderLock`), the shared
simulations (made once, cached), the jobs (`run_jobs`, one retry each) and the CSV, which only
this process writes.
"""

from __future__ import annotations

import os
import platform
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from tqdm.auto import tqdm

from sbi_cmpe.benchmark.cache import simulations
from sbi_cmpe.benchmark.store import FolderLock, append_rows
from sbi_cmpe.benchmark.tasks import Task

__all__ = ["machine_description", "run_jobs", "run_suite"]


def machine_description() -> str:
    """The machine column of a row: architecture, number of cores and processor."""
    return (
        f"{platform.machine()} {os.cpu_count()} cores, {platform.processor() or platform.system()}"
    )


def run_suite(
    out: str | Path,
    columns: Sequence[str],
    plan: Callable[[Path], List[Any]],
    inputs: Callable[[List[Any]], Sequence[Tuple[Task, int, int]]],
    run: Callable[[Any], List[Dict[str, Any]]],
    progress: bool = True,
    workers: Optional[int] = None,
    scheduler: Optional[str] = None,
) -> Path:
    """A suite's run: with `out` locked, plan the jobs from the rows done, simulate their
    inputs once, then run them (`run_jobs`), appending rows to `<out>/results.csv`.

    Arguments:
        out: The suite's folder (CSV, cache).
        columns: The CSV's columns.
        plan: `csv_path -> jobs` still to run.
        inputs: `jobs -> [(task, budget, seed)]` whose simulations the jobs share.
        run: `job -> rows`.
        progress: Whether to show a progress bar.
        workers: Run on a local Dask cluster of this many processes; `None` runs here.
        scheduler: Address of a running Dask scheduler to run on instead.

    Returns:
        The path of the results CSV.
    """
    out = Path(out)
    csv_path = out / "results.csv"
    with FolderLock(out):
        jobs = plan(csv_path)
        for task, budget, seed in inputs(jobs):  # made once, shared by their jobs
            simulations(task, budget, seed, out / "cache")
        write = partial(append_rows, csv_path, columns=columns)
        run_jobs(jobs, run, write, csv_path, progress, workers, scheduler)
    return csv_path


def run_jobs(
    jobs: Sequence[Any],
    run: Callable[[Any], List[Dict[str, Any]]],
    write: Callable[[List[Dict[str, Any]]], None],
    csv_path: Path,
    progress: bool = True,
    workers: Optional[int] = None,
    scheduler: Optional[str] = None,
) -> None:
    """Run `jobs` here one by one, or on Dask, writing each job's rows as it finishes.

    A job that raises is retried once (a dead Dask worker's job too), then reported after
    the other jobs ran.

    Arguments:
        jobs: The jobs (any objects with a readable `str`).
        run: `job -> rows`.
        write: Writes one job's rows (only this process calls it).
        csv_path: The results CSV, named in the error.
        progress: Whether to show a progress bar.
        workers: Run on a local Dask cluster of this many processes; `None` runs here.
        scheduler: Address of a running Dask scheduler to run on instead.

    Raises:
        RuntimeError: Naming the jobs that failed twice (the others' rows are written).
    """
    if workers is None and scheduler is None:
        failures = []
        bar = tqdm(jobs, disable=not progress, desc="benchmark", unit="job")
        for job in bar:
            bar.set_postfix_str(str(job))
            for attempt in (1, 2):
                try:
                    rows = run(job)
                except Exception as err:  # reported after the other jobs ran
                    if attempt == 2:
                        failures.append((job, f"{type(err).__name__}: {err}"))
                    continue
                write(rows)
                break
    else:
        from sbi_cmpe.benchmark.distributed import run_on_dask

        failures = run_on_dask(
            jobs, run, write, workers=workers, scheduler=scheduler, progress=progress
        )
    if failures:
        lines = "\n".join(f"  {job}: {error}" for job, error in failures)
        raise RuntimeError(
            f"{len(failures)} of {len(jobs)} jobs failed (their rows are missing; the others "
            f"are in {csv_path}; run again to retry them):\n{lines}"
        )
