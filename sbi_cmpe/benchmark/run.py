"""Run the benchmark: simulate once, train every method on the same data, measure.

The grid is cut into jobs, one per (task, budget, method, seed): a job trains the method on
the cached simulations of its (task, budget, seed) (or loads the cached posterior) and
measures it at each observation, returning rows. Jobs run one after the other in this
process, or on a Dask cluster (`sbi_cmpe.benchmark.distributed`); either way only this
process writes the CSV (`sbi_cmpe.benchmark.store`), and a job's rows are the same: every
random draw of a job is seeded by (seed, observation, steps).
"""

from __future__ import annotations

import datetime
import math
import warnings
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import sbi
import torch
from sbi.utils.metrics import c2st
from torch import Tensor

from sbi_cmpe import __version__
from sbi_cmpe.benchmark.cache import trained as cached_training
from sbi_cmpe.benchmark.clock import time_sample_batched, timed
from sbi_cmpe.benchmark.methods import Trained
from sbi_cmpe.benchmark.store import COLUMNS, completed_rows
from sbi_cmpe.benchmark.suite import machine_description, run_suite
from sbi_cmpe.benchmark.tasks import Task, load_task

__all__ = [
    "Settings",
    "Job",
    "run_benchmark",
    "run_job",
    "plan",
    "benchmark_c2st",
    "COLUMNS",
    "C2ST_NAME",
]

C2ST_NAME = "sbi.utils.metrics.c2st (random forest, 5-fold, z-scored)"


@dataclass
class Settings:
    """What to run.

    Arguments:
        tasks: sbibm task names, or `Task` objects for any prior and simulator.
        budgets: Numbers of simulations.
        methods: Method names (see `sbi_cmpe.benchmark.methods.METHODS`).
        observations: Observation indices (1-based, as sbibm).
        seeds: Seeds; each gives its own simulations and training.
        out: Output folder (CSV, cache, report).
        num_draws: Posterior draws per C2ST (and for the single-x timing).
        sweep_steps: CMPE sampling steps swept (C2ST and time for each).
        sweep_observations: Observations on which the step sweep runs.
        batched_draws: Draws per x in the `sample_batched` timing.
        batched_num_x: Number of x in the `sample_batched` timing.
        batched_max_single_s: Skip the batched timing when 10k single-x draws took
            longer than this (the batched timing would take about
            `batched_draws * batched_num_x / num_draws` times as long).
        max_sampling_time: Time limit (s) of one sampling call with prior rejection.
        max_num_epochs: Cap on training epochs (smoke runs only).
        threads: torch threads for training and sampling.
        c2st_jobs: Parallel jobs of the C2ST random forest (same result for any value).
    """

    tasks: Sequence[str | Task] = ("two_moons",)
    budgets: Sequence[int] = (1_000, 10_000)
    methods: Sequence[str] = ("cmpe", "npe_maf", "npe_nsf", "fmpe")
    observations: Sequence[int] = (1, 2, 3, 4, 5)
    seeds: Sequence[int] = (0,)
    out: str | Path = "benchmarks/results"
    num_draws: int = 10_000
    sweep_steps: Sequence[int] = (1, 2, 3, 5, 10, 20)
    sweep_observations: Sequence[int] = (1,)
    batched_draws: int = 1_000
    batched_num_x: int = 100
    batched_max_single_s: float = 5.0
    max_sampling_time: float = 120.0
    max_num_epochs: Optional[int] = None
    threads: int = 1
    c2st_jobs: int = 1


def _done(csv_path: Path) -> set:
    """Keys (task, budget, method, seed, observation, num_steps) of the complete rows."""
    return {
        (r["task"], int(r["budget"]), r["method"], int(r["seed"]), int(r["observation"]),
         r["num_steps"])
        for r in completed_rows(csv_path)
    }  # fmt: skip


def _sample(
    trained: Trained,
    x,
    n: int,
    limit: float,
    num_steps: Optional[int] = None,
    batched: bool = False,
):
    kwargs = dict(
        show_progress_bars=False, max_sampling_time=limit, return_partial_on_timeout=True
    )
    if num_steps is not None:
        kwargs["num_steps"] = num_steps
    posterior = trained.posterior
    if batched:
        return timed(lambda: posterior.sample_batched((n,), x=x, **kwargs))
    return timed(lambda: posterior.sample((n,), x=x, **kwargs))


@dataclass(frozen=True)
class Job:
    """One (task, budget, method, seed) of the grid, with the (observation, steps) pairs
    still to measure (`steps` is `None` for the method's default)."""

    task: str | Task
    budget: int
    method: str
    seed: int
    todo: Tuple[Tuple[int, Optional[int]], ...]

    @property
    def task_name(self) -> str:
        return self.task if isinstance(self.task, str) else self.task.name

    def __str__(self) -> str:
        return f"{self.task_name} {self.budget} {self.method} seed {self.seed}"


def plan(settings: Settings, csv_path: Path) -> List[Job]:
    """The jobs of `settings` that still have rows to make (complete rows are skipped)."""
    done = _done(csv_path)
    jobs = []
    for task in settings.tasks:
        name = task if isinstance(task, str) else task.name
        for budget in settings.budgets:
            for seed in settings.seeds:
                for method in settings.methods:
                    sweep = [None, *settings.sweep_steps] if method.startswith("cmpe") else [None]
                    todo = tuple(
                        (obs, k)
                        for obs in settings.observations
                        for k in (sweep if obs in settings.sweep_observations else [None])
                        if (name, budget, method, seed, obs, _steps_key(k)) not in done
                    )
                    if todo:
                        jobs.append(Job(task, budget, method, seed, todo))
    return jobs


def run_benchmark(
    settings: Settings,
    progress: bool = True,
    workers: Optional[int] = None,
    scheduler: Optional[str] = None,
) -> Path:
    """Run what `settings` asks, appending rows to `<out>/results.csv`; returns its path.

    Rows already in the CSV are skipped, so an interrupted run resumes where it stopped
    (a row cut off by the interruption is removed and made again); simulations and trained
    posteriors are cached. The folder is locked while the run writes: a second run on the
    same `out` refuses to start.

    Arguments:
        settings: What to run.
        progress: Whether to show a progress bar.
        workers: Run the jobs on a local Dask cluster of this many worker processes (one
            torch thread each, or `settings.threads`); `None` runs them here, one by one.
        scheduler: Address of a running Dask scheduler to send the jobs to instead; its
            workers must see `out` (a shared file system).

    Returns:
        The path of the results CSV.

    Raises:
        RuntimeError: When another run holds the folder's lock, or when jobs failed (after
            one retry each; the rows of all other jobs are written).
    """

    def inputs(jobs: List[Job]) -> List[Tuple[Task, int, int]]:
        first = {(j.task_name, j.budget, j.seed): j for j in reversed(jobs)}
        return [
            (load_task(j.task) if isinstance(j.task, str) else j.task, j.budget, j.seed)
            for j in first.values()
        ]

    run = partial(run_job, settings=settings)
    return run_suite(
        settings.out, COLUMNS, partial(plan, settings), inputs, run, progress, workers, scheduler
    )


def run_job(job: Job, settings: Settings) -> List[Dict[str, Any]]:
    """Train (or load) the job's posterior and measure it at each of its observations.

    Arguments:
        job: The job.
        settings: The run's settings (threads, draws, time limits, cache folder).

    Returns:
        The job's rows, in the order of `job.todo`.
    """
    torch.set_num_threads(settings.threads)
    task = load_task(job.task) if isinstance(job.task, str) else job.task
    cache = Path(settings.out) / "cache"
    trained = cached_training(
        task, job.budget, job.method, job.seed, cache, settings.max_num_epochs
    )
    batched_time, batched_note = _batched_timing(task, trained, settings)
    common = dict(
        torch_threads=settings.threads,
        sbi=sbi.__version__,
        torch=torch.__version__,
        sbi_cmpe=__version__,
        machine=machine_description(),
    )
    rows = []
    for obs, k in job.todo:
        x_o = task.observation(obs)
        torch.manual_seed(_sampling_seed(job.seed, obs, k))
        samples, seconds = _sample(trained, x_o, settings.num_draws, settings.max_sampling_time, k)
        note = "; ".join(filter(None, [_choice_note(trained), batched_note]))
        score = float("nan")
        if task.reference_samples is not None and len(samples) > 1:
            reference = task.reference_samples(obs, settings.num_draws)
            score = benchmark_c2st(samples, reference, settings.c2st_jobs)
        if len(samples) < settings.num_draws:
            note = f"{note}; only {len(samples)} draws within the time limit".strip("; ")
        is_cmpe = job.method.startswith("cmpe")  # with or without options
        num_steps = trained.posterior.num_steps if is_cmpe else ""
        rows.append(
            dict(
                task=task.name,
                budget=job.budget,
                method=job.method,
                seed=job.seed,
                observation=obs,
                num_steps=_steps_key(k),
                c2st=round(score, 4),
                num_draws=len(samples),
                train_time_s=round(trained.train_time_s, 2),
                epochs=trained.epochs,
                optimizer_steps=trained.optimizer_steps,
                sample_time_10k_s=round(seconds * 10_000 / settings.num_draws, 4),
                batched_time_s=batched_time if k is None else "",
                batched_draws=settings.batched_draws,
                batched_num_x=settings.batched_num_x,
                calls_per_draw=(k or num_steps) if is_cmpe else trained.calls_per_draw or "",
                note=note,
                date=datetime.date.today().isoformat(),
                **common,
            )
        )
    return rows


def benchmark_c2st(samples: Tensor, reference: Tensor, jobs: int = 1) -> float:
    """The benchmark's C2ST (`C2ST_NAME`) of draws against reference draws, on as many of
    each as the shorter has, with sklearn's warnings silenced.

    Arguments:
        samples: Posterior draws `(n, D)`.
        reference: Reference posterior draws `(m, D)`.
        jobs: Parallel jobs of the random forest (same result for any value).

    Returns:
        The C2ST accuracy (0.5 is best).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return c2st(
            samples[: len(reference)],
            reference[: len(samples)],
            classifier_kwargs={"n_jobs": jobs},
        ).item()


def _choice_note(trained: Trained) -> str:
    """Where training chose CMPE's steps: what the choice cost (it is in the training time)."""
    choice = getattr(getattr(trained.posterior, "estimator", None), "step_choice", None)
    if choice is None:
        return ""
    return f"steps {choice.num_steps} chosen in {choice.seconds:.2f} s"


def _sampling_seed(seed: int, observation: int, steps: Optional[int]) -> int:
    """Seed of the draws scored at (observation, steps), the same wherever the job runs."""
    return 1_000_003 * seed + 1_009 * observation + (steps or 0)


def _steps_key(k: Optional[int]) -> str:
    """`num_steps` column: 'default' for each method's default, else the CMPE steps."""
    return "default" if k is None else str(k)


def _batched_timing(task: Task, trained: Trained, settings: Settings) -> tuple:
    """Time `sample_batched` for `batched_draws` draws at each of `batched_num_x` x."""
    x_o = task.observation(1)
    _, single = _sample(trained, x_o, min(settings.num_draws, 1_000), settings.max_sampling_time)
    per_draw = single / min(settings.num_draws, 1_000)
    expected = per_draw * settings.batched_draws * settings.batched_num_x
    if per_draw * 10_000 > settings.batched_max_single_s:
        return (
            "",
            f"batched timing skipped: 10k draws take {per_draw * 10_000:.1f} s, "
            f"so about {expected:.0f} s expected",
        )
    seconds, complete = time_sample_batched(
        trained.posterior,
        task,
        settings.batched_draws,
        settings.batched_num_x,
        settings.max_sampling_time,
    )
    if math.isinf(seconds):
        return "", "batched timing: nothing accepted within the time limit"
    return round(seconds, 3), "" if complete else "batched timing hit the time limit"
