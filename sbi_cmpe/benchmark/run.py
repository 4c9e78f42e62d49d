"""Run the benchmark: simulate once, train every method on the same data, measure."""

from __future__ import annotations

import csv
import datetime
import math
import os
import platform
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import sbi
import torch
from sbi.utils.metrics import c2st
from tqdm.auto import tqdm

from sbi_cmpe import __version__
from sbi_cmpe.benchmark.cache import trained as cached_training
from sbi_cmpe.benchmark.clock import time_sample_batched, timed
from sbi_cmpe.benchmark.methods import Trained
from sbi_cmpe.benchmark.tasks import Task, load_task

__all__ = ["Settings", "run_benchmark", "COLUMNS", "C2ST_NAME"]

C2ST_NAME = "sbi.utils.metrics.c2st (random forest, 5-fold, z-scored)"

COLUMNS = [
    "task",
    "budget",
    "method",
    "seed",
    "observation",
    "num_steps",
    "c2st",
    "num_draws",
    "train_time_s",
    "epochs",
    "optimizer_steps",
    "sample_time_10k_s",
    "batched_time_s",
    "batched_draws",
    "batched_num_x",
    "calls_per_draw",
    "note",
    "torch_threads",
    "sbi",
    "torch",
    "sbi_cmpe",
    "machine",
    "date",
]


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


def _machine() -> str:
    return (
        f"{platform.machine()} {os.cpu_count()} cores, {platform.processor() or platform.system()}"
    )


def _done(csv_path: Path) -> set:
    if not csv_path.exists():
        return set()
    with csv_path.open() as f:
        return {
            (
                r["task"],
                int(r["budget"]),
                r["method"],
                int(r["seed"]),
                int(r["observation"]),
                r["num_steps"],
            )
            for r in csv.DictReader(f)
        }


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


def run_benchmark(settings: Settings, progress: bool = True) -> Path:
    """Run what `settings` asks, appending rows to `<out>/results.csv`; returns its path.

    Rows already in the CSV are skipped, so an interrupted run resumes where it
    stopped; trained posteriors are cached too.
    """
    torch.set_num_threads(settings.threads)
    out = Path(settings.out)
    cache = out / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    csv_path = out / "results.csv"
    done = _done(csv_path)
    common = dict(
        torch_threads=settings.threads,
        sbi=sbi.__version__,
        torch=torch.__version__,
        sbi_cmpe=__version__,
        machine=_machine(),
    )
    units = [
        (t, b, m, s)
        for t in settings.tasks
        for b in settings.budgets
        for s in settings.seeds
        for m in settings.methods
    ]
    bar = tqdm(units, disable=not progress, desc="benchmark", unit="run")
    for task_or_name, budget, method, seed in bar:
        task = load_task(task_or_name) if isinstance(task_or_name, str) else task_or_name
        bar.set_postfix_str(f"{task.name} {budget} {method} seed {seed}")
        sweep = [None, *settings.sweep_steps] if method.startswith("cmpe") else [None]
        todo = [
            (obs, k)
            for obs in settings.observations
            for k in (sweep if obs in settings.sweep_observations else [None])
            if (task.name, budget, method, seed, obs, _steps_key(k)) not in done
        ]
        if not todo:
            continue
        trained = cached_training(task, budget, method, seed, cache, settings.max_num_epochs)
        batched_time, batched_note = _batched_timing(task, trained, settings)
        rows = []
        for obs, k in todo:
            x_o = task.observation(obs)
            samples, seconds = _sample(
                trained, x_o, settings.num_draws, settings.max_sampling_time, k
            )
            note = batched_note
            score = float("nan")
            if task.reference_samples is not None and len(samples) > 1:
                reference = task.reference_samples(obs, settings.num_draws)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    score = c2st(
                        samples[: len(reference)],
                        reference[: len(samples)],
                        classifier_kwargs={"n_jobs": settings.c2st_jobs},
                    ).item()
            if len(samples) < settings.num_draws:
                note = f"{note}; only {len(samples)} draws within the time limit".strip("; ")
            is_cmpe = method.startswith("cmpe")
            num_steps = trained.posterior.num_steps if is_cmpe else ""
            rows.append(
                dict(
                    task=task.name,
                    budget=budget,
                    method=method,
                    seed=seed,
                    observation=obs,
                    num_steps=_steps_key(k) if k is not None else _steps_key(None),
                    c2st=round(score, 4),
                    num_draws=len(samples),
                    train_time_s=round(trained.train_time_s, 2),
                    epochs=trained.epochs,
                    optimizer_steps=trained.optimizer_steps,
                    sample_time_10k_s=round(seconds * 10_000 / settings.num_draws, 4),
                    batched_time_s=batched_time if k is None else "",
                    batched_draws=settings.batched_draws,
                    batched_num_x=settings.batched_num_x,
                    calls_per_draw=(k or num_steps)
                    if method == "cmpe"
                    else trained.calls_per_draw or "",
                    note=note,
                    date=datetime.date.today().isoformat(),
                    **common,
                )
            )
        _append(csv_path, rows)
    return csv_path


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


def _append(csv_path: Path, rows: List[Dict]) -> None:
    new = not csv_path.exists()
    with csv_path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerows(rows)


def iter_rows(csv_path: str | Path) -> Iterable[Dict]:
    """Rows of a results CSV, as dicts of strings."""
    with Path(csv_path).open() as f:
        yield from csv.DictReader(f)
