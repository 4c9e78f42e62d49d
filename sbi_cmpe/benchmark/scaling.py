"""Scaling suite, dimension sweep: every method on a linear Gaussian of growing dimension D.

The task (`linear_gaussian_task`) has an exact Gaussian posterior, so accuracy is measured
for any D without reference samples: the 2-Wasserstein distance between the Gaussian fitted
to the draws and the exact posterior (`gaussian_w2`), the errors of the marginal means and
standard deviations, C2ST where D <= 10, and calibration by sbi's TARP on held-out
simulations. Jobs, one per (D, budget, method, seed), share the benchmark's cache and its
resumable CSV (`sbi_cmpe.benchmark.store`), with this suite's columns (`SCALING_COLUMNS`).
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from dataclasses import dataclass
from functools import partial
from itertools import product
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import sbi
import torch
from sbi.diagnostics import check_tarp, run_tarp
from sbi.simulators.linear_gaussian import (
    linear_gaussian,
    true_posterior_linear_gaussian_mvn_prior,
)
from torch import Tensor
from torch.distributions import MultivariateNormal

from sbi_cmpe import __version__
from sbi_cmpe.benchmark.cache import trained
from sbi_cmpe.benchmark.clock import timed
from sbi_cmpe.benchmark.report import LABELS
from sbi_cmpe.benchmark.run import benchmark_c2st
from sbi_cmpe.benchmark.store import (
    column_mean,
    completed_rows,
    iter_rows,
)
from sbi_cmpe.benchmark.suite import machine_description, run_suite
from sbi_cmpe.benchmark.tasks import Task, seeded

__all__ = [
    "SCALING_COLUMNS", "ScalingSettings", "ScalingJob", "linear_gaussian_task", "exact_posterior",
    "gaussian_w2", "plan", "run_scaling", "run_scaling_job", "scaling_report",
]  # fmt: skip

SCALING_COLUMNS = [
    "task", "dim", "budget", "method", "seed", "observation", "num_steps", "w2", "mean_err",
    "sd_err", "c2st", "num_draws", "train_time_s", "epochs", "optimizer_steps",
    "sample_time_10k_s", "batched_time_s", "batched_num_x", "batched_draws", "tarp_atc",
    "tarp_ks_pvalue", "torch_threads", "sbi", "torch", "sbi_cmpe", "machine", "note",
]  # fmt: skip
C2ST_MAX_DIM = 10  # C2ST (against exact draws) only up to this dimension


@dataclass
class ScalingSettings:
    """What the dimension sweep runs (the fields not listed are those of
    `sbi_cmpe.benchmark.run.Settings`).

    Arguments:
        dims: Dimensions D of the linear Gaussian.
        num_draws: Posterior draws per observation (metrics and timing).
        held_out: Held-out simulations for TARP.
        calibration_draws: Posterior draws per held-out x for TARP.
    """

    dims: Sequence[int] = (2, 8, 32, 128)
    budgets: Sequence[int] = (10_000,)
    methods: Sequence[str] = ("cmpe", "npe_maf", "npe_nsf", "fmpe")
    observations: Sequence[int] = (1, 2, 3, 4, 5)
    seeds: Sequence[int] = (0,)
    out: str | Path = "benchmarks/scaling/dims"
    num_draws: int = 10_000
    held_out: int = 200
    calibration_draws: int = 1_000
    max_sampling_time: float = 120.0
    max_num_epochs: Optional[int] = None
    threads: int = 1
    c2st_jobs: int = 1


@dataclass(frozen=True)
class ScalingJob:
    """One (D, budget, method, seed) with the observations still to measure."""

    dim: int
    budget: int
    method: str
    seed: int
    observations: Tuple[int, ...]

    def __str__(self) -> str:
        return f"D={self.dim} {self.budget} {self.method} seed {self.seed}"


def _likelihood(dim: int) -> Tuple[Tensor, Tensor]:
    """Shift `(D,)` and diagonal noise covariance `(D, D)`, standard deviations log-spaced
    from 0.1 to 1.0."""
    stds = torch.logspace(-1.0, 0.0, dim)  # (D,)
    return 0.5 * torch.ones(dim), torch.diag(stds**2)


def exact_posterior(dim: int, x_o: Tensor) -> MultivariateNormal:
    """The exact posterior of `linear_gaussian_task(dim)` at `x_o` `(1, D)`."""
    shift, cov = _likelihood(dim)
    zeros, eye = torch.zeros(dim), torch.eye(dim)
    return true_posterior_linear_gaussian_mvn_prior(x_o, shift, cov, zeros, eye)


def linear_gaussian_task(dim: int) -> Task:
    """x = theta + 0.5 + noise with theta ~ N(0, I_D) and per-dimension noise scales.

    Observation `i` is simulated from its own prior draw with torch's generator seeded by
    `1000 * dim + i` (the global state is left as it was); `reference_samples(i, n)` draws
    from the exact posterior with a fixed seed.
    """
    shift, cov = _likelihood(dim)
    prior = MultivariateNormal(torch.zeros(dim), torch.eye(dim))

    def simulator(theta: Tensor) -> Tensor:  # (N, D) -> (N, D)
        return linear_gaussian(theta, shift, cov)

    def observation(i: int) -> Tensor:  # (1, D)
        return seeded(1_000 * dim + i, lambda: simulator(prior.sample((1,))))

    def reference(i: int, n: int) -> Tensor:  # (n, D)
        posterior = exact_posterior(dim, observation(i))
        return seeded(10**6 + 1_000 * dim + i, lambda: posterior.sample((n,)))

    return Task(f"linear_gaussian_d{dim}", prior, simulator, observation, reference)


def gaussian_w2(m1: Tensor, s1: Tensor, m2: Tensor, s2: Tensor) -> float:
    """The 2-Wasserstein distance between N(m1, s1) and N(m2, s2), in closed form.

    W2² = |m1 − m2|² + tr(s1 + s2 − 2 (s2^½ s1 s2^½)^½), in float64.

    Arguments:
        m1: Mean `(D,)`.
        s1: Covariance `(D, D)`.
        m2: Mean `(D,)`.
        s2: Covariance `(D, D)`.

    Returns:
        W2 (not normalised by D).
    """
    m1, s1, m2, s2 = (t.to(torch.float64) for t in (m1, s1, m2, s2))
    values, vectors = torch.linalg.eigh(s2)  # s2^½ by the symmetric eigendecomposition
    root = vectors @ torch.diag(values.clamp(min=0).sqrt()) @ vectors.T  # (D, D)
    cross = torch.linalg.eigvalsh(root @ s1 @ root).clamp(min=0).sqrt().sum()
    squared = (m1 - m2).square().sum() + torch.trace(s1) + torch.trace(s2) - 2 * cross
    return math.sqrt(max(squared.item(), 0.0))


def _accuracy(samples: Tensor, posterior: MultivariateNormal) -> Dict[str, float]:
    """w2 (normalised by D), mean_err and sd_err of draws `(n, D)` against `posterior`."""
    draws = samples.to(torch.float64)
    mean_hat, cov_hat = draws.mean(0), torch.cov(draws.T).reshape(draws.shape[1], -1)
    mean_true = posterior.mean.to(torch.float64)  # (D,)
    cov_true = posterior.covariance_matrix.to(torch.float64)  # (D, D)
    sd_true, sd_hat = cov_true.diagonal().sqrt(), cov_hat.diagonal().sqrt()
    return dict(
        w2=gaussian_w2(mean_hat, cov_hat, mean_true, cov_true) / math.sqrt(len(mean_true)),
        mean_err=((mean_hat - mean_true).abs() / sd_true).mean().item(),
        sd_err=(sd_hat / sd_true - 1).abs().mean().item(),
    )


def _sampling_seed(seed: int, observation: int) -> int:
    """Seed of the draws at `observation` (0: the TARP draws), the same wherever it runs."""
    return 1_000_003 * seed + 1_009 * observation


def _calibration(task: Task, dim: int, posterior: Any, settings: ScalingSettings, seed: int):
    """TARP on held-out pairs (seeded by 7919 + D): (atc, KS p-value, seconds of run_tarp)."""

    def held_out() -> Tuple[Tensor, Tensor]:  # theta (H, D), x (H, D)
        theta = task.prior.sample((settings.held_out,))
        return theta, task.simulator(theta)

    theta, xs = seeded(7_919 + dim, held_out)
    torch.manual_seed(_sampling_seed(seed, 0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. TARP's warning below 100 held-out pairs
        (ecp, alpha), seconds = timed(
            lambda: run_tarp(
                theta, xs, posterior, num_posterior_samples=settings.calibration_draws,
                show_progress_bar=False,
            )
        )  # fmt: skip
    atc, pvalue = check_tarp(ecp, alpha)
    return atc, float(pvalue), seconds


def run_scaling_job(job: ScalingJob, settings: ScalingSettings) -> List[Dict[str, Any]]:
    """Train (or load) the job's posterior, measure it at each observation and by TARP.

    Arguments:
        job: The job.
        settings: The run's settings.

    Returns:
        The job's rows (columns `SCALING_COLUMNS`), one per observation.
    """
    torch.set_num_threads(settings.threads)
    task = linear_gaussian_task(job.dim)
    result = trained(
        task, job.budget, job.method, job.seed, Path(settings.out) / "cache",
        settings.max_num_epochs,
    )  # fmt: skip
    posterior = result.posterior
    atc, pvalue, batched = _calibration(task, job.dim, posterior, settings, job.seed)
    common = dict(
        task=task.name, dim=job.dim, budget=job.budget, method=job.method, seed=job.seed,
        num_steps=posterior.num_steps if job.method.startswith("cmpe") else "",
        train_time_s=round(result.train_time_s, 2), epochs=result.epochs,
        optimizer_steps=result.optimizer_steps, batched_time_s=round(batched, 3),
        batched_num_x=settings.held_out, batched_draws=settings.calibration_draws,
        tarp_atc=round(atc, 4), tarp_ks_pvalue=round(pvalue, 4),
        torch_threads=settings.threads, sbi=sbi.__version__, torch=torch.__version__,
        sbi_cmpe=__version__, machine=machine_description(),
    )  # fmt: skip
    kwargs: Dict[str, Any] = dict(show_progress_bars=False, return_partial_on_timeout=True)
    kwargs["max_sampling_time"] = settings.max_sampling_time
    rows = []
    for obs in job.observations:
        x_o = task.observation(obs)  # (1, D)
        torch.manual_seed(_sampling_seed(job.seed, obs))
        samples, seconds = timed(partial(posterior.sample, (settings.num_draws,), x=x_o, **kwargs))
        note = ""
        if len(samples) < settings.num_draws:
            note = f"only {len(samples)} draws within the time limit"
        c2st = ""
        if job.dim <= C2ST_MAX_DIM:
            reference = task.reference_samples(obs, settings.num_draws)  # (n, D)
            c2st = round(benchmark_c2st(samples, reference, settings.c2st_jobs), 4)
        accuracy = _accuracy(samples, exact_posterior(job.dim, x_o))
        per_10k = seconds * 10_000 / max(len(samples), 1)  # scaled to 10k draws
        rows.append(dict(
            common, observation=obs, **{k: round(v, 5) for k, v in accuracy.items()}, c2st=c2st,
            num_draws=len(samples), sample_time_10k_s=round(per_10k, 4), note=note,
        ))  # fmt: skip
    return rows


def plan(settings: ScalingSettings, csv_path: Path) -> List[ScalingJob]:
    """The jobs that still have rows to make (complete rows are skipped)."""
    done = {
        (int(r["dim"]), int(r["budget"]), r["method"], int(r["seed"]), int(r["observation"]))
        for r in completed_rows(csv_path, SCALING_COLUMNS)
    }
    jobs = []
    grid = product(settings.dims, settings.budgets, settings.methods, settings.seeds)
    for key in grid:  # (dim, budget, method, seed)
        todo = tuple(o for o in settings.observations if (*key, o) not in done)
        if todo:
            jobs.append(ScalingJob(*key, todo))
    return jobs


def run_scaling(
    settings: ScalingSettings,
    progress: bool = True,
    workers: Optional[int] = None,
    scheduler: Optional[str] = None,
) -> Path:
    """Run the sweep, appending rows to `<out>/results.csv` (resumable, folder locked).

    Arguments:
        settings: What to run.
        progress: Whether to show a progress bar.
        workers: Run the jobs on a local Dask cluster of this many processes; `None` runs
            them here, one by one.
        scheduler: Address of a running Dask scheduler to send the jobs to instead.

    Returns:
        The path of the results CSV.

    Raises:
        RuntimeError: When another run holds the folder's lock, or when jobs failed (after
            one retry each; the rows of all other jobs are written).
    """

    def inputs(jobs: List[ScalingJob]) -> List[Tuple[Task, int, int]]:
        keys = dict.fromkeys((j.dim, j.budget, j.seed) for j in jobs)
        return [(linear_gaussian_task(dim), budget, seed) for dim, budget, seed in keys]

    return run_suite(
        settings.out, SCALING_COLUMNS, partial(plan, settings), inputs,
        partial(run_scaling_job, settings=settings), progress, workers, scheduler,
    )  # fmt: skip


def scaling_report(csv_path: str | Path, out: str | Path) -> str:
    """Write `results.md` (means over observations and seeds per (D, budget, method)) and
    the plots `w2_vs_dim.png` and `sampling_time_vs_dim.png` to `out`; return the table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: Dict[Tuple[int, int, str], List[Dict[str, str]]] = defaultdict(list)
    for r in iter_rows(csv_path):
        groups[(int(r["dim"]), int(r["budget"]), r["method"])].append(r)
    columns = ["w2", "mean_err", "sd_err", "c2st", "tarp_atc"]
    times = ["train_time_s", "sample_time_10k_s", "batched_time_s"]
    lines = [
        "w2: sqrt(W2² / D) of the Gaussian fitted to the draws against the exact posterior; "
        "mean_err, sd_err in posterior standard deviations; C2ST only for D <= 10; TARP ATC "
        "0 is calibrated. Means over observations and seeds.",
        "",
        "| D | budget | method | w2 | mean_err | sd_err | C2ST | TARP ATC | train (s) "
        "| 10k draws (s) | batched (s) |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    means = {
        key: {c: column_mean(rows, c) for c in columns + times} for key, rows in groups.items()
    }
    for (dim, budget, method), m in sorted(means.items()):
        cells = [f"{m[c]:.3f}" if not math.isnan(m[c]) else "n/a" for c in columns]
        cells += [f"{m[c]:.2f}" if not math.isnan(m[c]) else "n/a" for c in times]
        lines.append(f"| {dim} | {budget:,} | {LABELS.get(method, method)} | " + " | ".join(cells))
        lines[-1] += " |"
    table = "\n".join(lines)
    out = Path(out)
    (out / "results.md").write_text(table + "\n")
    budgets = sorted({b for _, b, _ in means})
    for column, ylabel, name in [
        ("w2", "sqrt(W2² / D)", "w2_vs_dim.png"),
        ("sample_time_10k_s", "seconds for 10k draws", "sampling_time_vs_dim.png"),
    ]:
        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        for budget in budgets:
            for method in sorted({m for _, b, m in means if b == budget}):
                pts = sorted(
                    (d, s[column]) for (d, b, m), s in means.items() if (b, m) == (budget, method)
                )
                label = LABELS.get(method, method) + (f" ({budget:,})" if len(budgets) > 1 else "")
                ax.plot(*zip(*pts), marker="o", label=label)
        ax.set(xscale="log", yscale="log", xlabel="dimension D", ylabel=ylabel)
        dims = sorted({d for d, _, _ in means})
        ax.set_xticks(dims, [str(d) for d in dims])
        ax.set_xticks([], minor=True)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / name, dpi=120)
        plt.close(fig)
    return table
