"""The scaling suite's images (`--suite images`): Bayesian denoising of 8x8 digits.

theta is an image's 64 pixels (scikit-learn's digits, grey levels 0-16 scaled to [0, 1]);
x is the image blurred by a 3x3 binomial kernel plus Gaussian noise of standard deviation
0.1 (`blur_and_noise`). The prior is the empirical distribution of the training digits
(`DigitsPrior`); `num_test` digits, chosen with a fixed seed, are held out and never
simulated for training. Every method gets the same CNN embedding of x (`cnn_embedding`).

Metrics on the held-out digits, from `num_draws` draws per image: the RMSE of the posterior
mean against the true image (over all pixels of all test images) and the per-pixel
coverage of the central 50% and 90% intervals (the fraction of true pixels inside them);
and the seconds of one `sample_batched` of `timing_draws` draws at each of the test images.
Under this prior the exact posterior puts all its mass on training digits, which a test
digit never is, so even exact inference does not reach nominal coverage: the method
`"exact"` (`exact_posterior_draws`) measures it, as the reference the others are read
against. Jobs, one per (budget, method, seed), share the benchmark's cache and resumable
CSV (`sbi_cmpe.benchmark.store`) with this suite's columns (`IMAGE_COLUMNS`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache, partial
from itertools import product
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import sbi
import torch
from sbi.neural_nets.embedding_nets import CNNEmbedding
from torch import Tensor, nn
from torch.distributions import Distribution, constraints

from sbi_cmpe import __version__
from sbi_cmpe.benchmark.cache import trained
from sbi_cmpe.benchmark.clock import timed
from sbi_cmpe.benchmark.report import LABELS
from sbi_cmpe.benchmark.store import (
    column_mean,
    completed_rows,
    iter_rows,
)
from sbi_cmpe.benchmark.suite import machine_description, run_suite
from sbi_cmpe.benchmark.tasks import Task, seeded

__all__ = [
    "IMAGE_COLUMNS", "ImageSettings", "ImageJob", "DigitsPrior", "blur", "blur_and_noise",
    "cnn_embedding", "digits_task", "split_digits", "exact_posterior_draws", "image_metrics",
    "run_images", "run_image_job", "images_report",
]  # fmt: skip

IMAGE_COLUMNS = [
    "task", "budget", "method", "seed", "num_steps", "rmse", "coverage_50", "coverage_90",
    "num_test", "num_draws", "train_time_s", "epochs", "optimizer_steps", "batched_time_s",
    "timing_draws", "torch_threads", "sbi", "torch", "sbi_cmpe", "machine", "note",
]  # fmt: skip
NOISE = 0.1  # standard deviation of the pixel noise of x
GREY_LEVEL = 1 / 16  # the step between the digits' 17 grey levels, in [0, 1] units
EXACT = "exact"  # the method name of the exact posterior's draws


def blur(theta: Tensor) -> Tensor:
    """Images `(N, 64)` blurred by the 3x3 kernel [1 2 1]ᵀ[1 2 1] / 16 (zero padding), as
    `(N, 8, 8)`."""
    row = torch.tensor([1.0, 2.0, 1.0])
    kernel = (row[:, None] * row[None, :] / 16)[None, None]  # (1, 1, 3, 3)
    return nn.functional.conv2d(theta.reshape(-1, 1, 8, 8), kernel, padding=1)[:, 0]


def blur_and_noise(theta: Tensor) -> Tensor:
    """The simulator: x = `blur(theta)` plus N(0, 0.1²) noise per pixel, `(N, 8, 8)`."""
    blurred = blur(theta)  # (N, 8, 8)
    return blurred + NOISE * torch.randn_like(blurred)


class DigitsPrior(Distribution):
    """The empirical distribution of a set of images `(M, 64)`: `sample` draws rows
    uniformly with replacement, on the images' device.

    Its support is all of R^64, so that no posterior draw is rejected as outside it, and its
    `log_prob` is 0 everywhere (an improper density, as sbi's `ImproperEmpirical`). Its
    `variance` is that of the images, floored at one grey level squared: pixels blank in
    every image would otherwise get a zero scale, which sbi's standardizing transform of the
    prior (built with a posterior) cannot invert.
    """

    arg_constraints: Dict[str, Any] = {}
    support = constraints.real_vector

    def __init__(self, images: Tensor) -> None:
        super().__init__(event_shape=images.shape[1:], validate_args=False)
        self.images = images  # (M, 64)

    @property
    def mean(self) -> Tensor:
        return self.images.mean(0)  # (64,)

    @property
    def variance(self) -> Tensor:
        return self.images.var(0).clamp(min=GREY_LEVEL**2)  # (64,)

    def log_prob(self, value: Tensor) -> Tensor:
        return torch.zeros(value.shape[:-1], dtype=value.dtype, device=value.device)

    def sample(self, sample_shape: Sequence[int] = ()) -> Tensor:
        shape = torch.Size(sample_shape)
        index = torch.randint(len(self.images), (shape.numel(),), device=self.images.device)
        return self.images[index].reshape(*shape, -1)  # (*sample_shape, 64)


def cnn_embedding() -> nn.Module:
    """The CNN embedding of x `(N, 8, 8)` that every method gets: 3x3 kernels, 64 outputs."""
    return CNNEmbedding(input_shape=(8, 8), kernel_size=3, output_dim=64)


@lru_cache(maxsize=4)
def split_digits(num_test: int) -> Tuple[Tensor, Tensor]:
    """(training images, test images), each `(M, 64)` in [0, 1], split by a seeded
    permutation (seed 0) of scikit-learn's 1,797 digits."""
    from sklearn.datasets import load_digits

    images = torch.tensor(load_digits().images, dtype=torch.float32).reshape(-1, 64) / 16
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    return images[order[num_test:]], images[order[:num_test]]


def digits_task(num_test: int = 100) -> Task:
    """Denoising of 8x8 digits: the training digits are the prior, `num_test` are held out.

    Observation `i` (1 to `num_test`) is test digit `i - 1` through `blur_and_noise`, with
    noise seeded by `i`; `reference_samples` is `None` (the metrics use the true images).
    """
    train, test = split_digits(num_test)

    def observation(i: int) -> Tensor:  # (1, 8, 8)
        return seeded(i, lambda: blur_and_noise(test[i - 1 : i]))

    return Task(
        f"digits_test{num_test}", DigitsPrior(train), blur_and_noise, observation, None,
        num_observations=num_test, embedding=cnn_embedding,
    )  # fmt: skip


def exact_posterior_draws(x: Tensor, train: Tensor, n: int) -> Tensor:
    r"""Draws of the exact posterior under the empirical prior of `train`.

    The posterior is the prior's images reweighted by the likelihood,
    $p(\theta_j \mid x) \propto \exp(-\|x - \mathrm{blur}(\theta_j)\|^2 / (2 \cdot 0.1^2))$.

    Arguments:
        x: Observations `(M, 8, 8)`.
        train: The prior's images `(J, 64)`.
        n: Draws per observation.

    Returns:
        Draws `(n, M, 64)`.
    """
    residual = x.reshape(len(x), 1, 64) - blur(train).reshape(1, len(train), 64)  # (M, J, 64)
    log_weights = -residual.square().sum(-1) / (2 * NOISE**2)  # (M, J)
    index = torch.multinomial(log_weights.softmax(-1), n, replacement=True)  # (M, n)
    return train[index].transpose(0, 1)  # (n, M, 64)


def image_metrics(draws: Tensor, truth: Tensor) -> Dict[str, float]:
    """RMSE of the posterior mean and coverage of central intervals.

    Arguments:
        draws: Posterior draws `(n, M, 64)` for M images.
        truth: The true images `(M, 64)`.

    Returns:
        `rmse` (over all pixels of all images), `coverage_50` and `coverage_90` (fraction of
        true pixels inside the central 50% and 90% intervals of the draws' quantiles).
    """
    rmse = (draws.mean(0) - truth).square().mean().sqrt().item()
    result = dict(rmse=rmse)
    for level in (50, 90):
        tail = (1 - level / 100) / 2
        q = torch.tensor([tail, 1 - tail])
        low, high = torch.quantile(draws, q, dim=0)  # each (M, 64)
        result[f"coverage_{level}"] = ((truth >= low) & (truth <= high)).float().mean().item()
    return result


@dataclass
class ImageSettings:
    """What the image suite runs.

    Arguments:
        budgets: Numbers of training simulations.
        methods: Methods of `sbi_cmpe.benchmark.methods.METHODS` (with CMPE options), or
            `"exact"`: draws of the exact posterior (no training; the same at every budget).
        seeds: Seeds of simulations and training.
        out: Output folder (CSV, cache, report).
        num_test: Held-out digits.
        num_draws: Draws per test image for the metrics.
        timing_draws: Draws per test image in the timed `sample_batched`.
        max_num_epochs: Cap on epochs (smoke runs); `None` keeps the defaults.
        threads: torch threads.
    """

    budgets: Sequence[int] = (1_000, 10_000)
    methods: Sequence[str] = (EXACT, "cmpe", "npe_nsf", "fmpe")
    seeds: Sequence[int] = (0,)
    out: str | Path = "benchmarks/scaling/images"
    num_test: int = 100
    num_draws: int = 1_000
    timing_draws: int = 100
    max_num_epochs: Optional[int] = None
    threads: int = 1


@dataclass(frozen=True)
class ImageJob:
    """One (budget, method, seed)."""

    budget: int
    method: str
    seed: int

    def __str__(self) -> str:
        return f"digits {self.budget} {self.method} seed {self.seed}"


def _sampling_seed(seed: int) -> int:
    """Seed of the metric draws of a job of training seed `seed` (not the training seed)."""
    return 1_000_003 * seed + 17


def run_image_job(job: ImageJob, settings: ImageSettings) -> List[Dict[str, Any]]:
    """Train (or load) the job's posterior and measure it on the test digits.

    The metric draws are seeded by the job's seed (apart from the training run's), then one
    `sample_batched` of `timing_draws` draws per test digit is timed.

    Arguments:
        job: The job.
        settings: The run's settings.

    Returns:
        The job's row (columns `IMAGE_COLUMNS`), in a list.
    """
    torch.set_num_threads(settings.threads)
    task = digits_task(settings.num_test)
    train, test = split_digits(settings.num_test)  # (J, 64), (M, 64)
    xs = torch.cat([task.observation(i) for i in range(1, settings.num_test + 1)])  # (M, 8, 8)
    row: Dict[str, Any] = dict(
        task=task.name, budget=job.budget, method=job.method, seed=job.seed, num_steps="",
        num_test=settings.num_test, num_draws=settings.num_draws, train_time_s=0.0, epochs=0,
        optimizer_steps=0, batched_time_s="", timing_draws="", torch_threads=settings.threads,
        sbi=sbi.__version__, torch=torch.__version__, sbi_cmpe=__version__,
        machine=machine_description(), note="",
    )  # fmt: skip
    torch.manual_seed(_sampling_seed(job.seed))
    if job.method == EXACT:
        draws = exact_posterior_draws(xs, train, settings.num_draws)  # (n, M, 64)
        row["note"] = "exact posterior under the empirical prior (no training)"
    else:
        cache = Path(settings.out) / "cache"
        result = trained(task, job.budget, job.method, job.seed, cache, settings.max_num_epochs)
        posterior = result.posterior
        quiet = dict(show_progress_bars=False)
        draws = posterior.sample_batched((settings.num_draws,), x=xs, **quiet)  # (n, M, 64)
        torch.manual_seed(_sampling_seed(job.seed) + 1)
        n = settings.timing_draws
        _, seconds = timed(lambda: posterior.sample_batched((n,), x=xs, **quiet))
        row.update(
            num_steps=posterior.num_steps if job.method.startswith("cmpe") else "",
            train_time_s=round(result.train_time_s, 2), epochs=result.epochs,
            optimizer_steps=result.optimizer_steps, batched_time_s=round(seconds, 3),
            timing_draws=n,
        )  # fmt: skip
    row.update({k: round(v, 4) for k, v in image_metrics(draws, test).items()})
    return [row]


def run_images(
    settings: ImageSettings,
    progress: bool = True,
    workers: Optional[int] = None,
    scheduler: Optional[str] = None,
) -> Path:
    """Run the suite, appending rows to `<out>/results.csv` (resumable, folder locked).

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
    task = digits_task(settings.num_test)

    def plan(csv_path: Path) -> List[ImageJob]:
        done = {
            (int(r["budget"]), r["method"], int(r["seed"]))
            for r in completed_rows(csv_path, IMAGE_COLUMNS)
            if r["task"] == task.name  # another number of test digits is another task
        }
        grid = product(settings.budgets, settings.methods, settings.seeds)
        return [ImageJob(*key) for key in grid if key not in done]

    def inputs(jobs: List[ImageJob]) -> List[Tuple[Task, int, int]]:
        keys = dict.fromkeys((j.budget, j.seed) for j in jobs if j.method != EXACT)
        return [(task, budget, seed) for budget, seed in keys]

    return run_suite(
        settings.out, IMAGE_COLUMNS, plan, inputs, partial(run_image_job, settings=settings),
        progress, workers, scheduler,
    )  # fmt: skip


def images_report(csv_path: str | Path, out: str | Path) -> str:
    """Write `results.md` (means over seeds per (task, budget, method)) and
    `rmse_vs_budget.png` to `out`; return the table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: Dict[Tuple[str, int, str], List[Dict[str, str]]] = defaultdict(list)
    for r in iter_rows(csv_path):
        groups[(r["task"], int(r["budget"]), r["method"])].append(r)
    columns = ["rmse", "coverage_50", "coverage_90", "train_time_s", "batched_time_s"]
    means = {key: {c: column_mean(rows, c) for c in columns} for key, rows in groups.items()}
    lines = [
        "RMSE of the posterior mean against the true test digits (pixels in [0, 1]); coverage: "
        "fraction of true pixels inside the central 50% and 90% intervals (exact: the exact "
        "posterior under the empirical prior, which is not nominal either); batched: one "
        "`sample_batched` of the timing draws at every test digit. Means over seeds.",
        "",
        "| task | budget | method | RMSE | coverage 50% | coverage 90% | train (s) "
        "| batched (s) |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for (task, budget, method), m in sorted(means.items()):
        timing = "n/a" if math.isnan(m["batched_time_s"]) else f"{m['batched_time_s']:.2f}"
        lines.append(
            f"| {task} | {budget:,} | {LABELS.get(method, method)} | {m['rmse']:.4f} | "
            f"{m['coverage_50']:.3f} | {m['coverage_90']:.3f} | {m['train_time_s']:.0f} | "
            f"{timing} |"
        )
    table = "\n".join(lines)
    out = Path(out)
    (out / "results.md").write_text(table + "\n")
    tasks = {t for t, _, _ in means}
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for task, method in sorted({(t, m) for t, _, m in means}):
        pts = sorted((b, s["rmse"]) for (t, b, m), s in means.items() if (t, m) == (task, method))
        label = LABELS.get(method, method) + (f" ({task})" if len(tasks) > 1 else "")
        ax.plot(*zip(*pts), marker="o", label=label)
    ax.set(xscale="log", xlabel="simulations", ylabel="RMSE of the posterior mean")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "rmse_vs_budget.png", dpi=120)
    plt.close(fig)
    return table
