"""A toy benchmark task whose reference sampler can stall, kill its process or fail, for
the fault-injection tests (it runs inside benchmark jobs, on Dask workers too)."""

import os
import signal
import time
from pathlib import Path
from typing import Optional

import torch
from sbi.utils import BoxUniform

from sbi_cmpe.benchmark import Settings, Task


def toy_task(
    stall_marker: Optional[Path] = None,
    kill_marker: Optional[Path] = None,
    always_fail: bool = False,
    fail_marker: Optional[Path] = None,
) -> Task:
    """Two parameters, x = theta + noise, reference draws from a fixed generator.

    Arguments:
        stall_marker: At observation 2, create this file and sleep (a run to be killed).
        kill_marker: At observation 2, the first time (while the file is missing), create
            this file and SIGKILL the process.
        always_fail: Raise at observation 2, every time.
        fail_marker: At observation 2, the first time (while the file is missing), create
            this file and raise.
    """
    prior = BoxUniform(-2 * torch.ones(2), 2 * torch.ones(2))

    def reference(i: int, n: int) -> torch.Tensor:
        if i == 2 and stall_marker is not None:
            stall_marker.touch()
            time.sleep(600)
        if i == 2 and kill_marker is not None and not kill_marker.exists():
            kill_marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        if i == 2 and always_fail:
            raise RuntimeError("injected failure")
        if i == 2 and fail_marker is not None and not fail_marker.exists():
            fail_marker.touch()
            raise RuntimeError("injected failure, once")
        g = torch.Generator().manual_seed(i)
        return 0.2 * i + 0.3 * torch.randn(n, 2, generator=g)

    return Task(
        name="toy",
        prior=prior,
        simulator=lambda theta: theta + 0.1 * torch.randn_like(theta),
        observation=lambda i: torch.full((1, 2), 0.2 * i),
        reference_samples=reference,
        num_observations=3,
    )


def toy_settings(out: Path, task: Task, methods=("cmpe", "npe_maf")) -> Settings:
    """A benchmark of seconds on `task`."""
    return Settings(
        tasks=[task],
        budgets=[200],
        methods=list(methods),
        observations=[1, 2, 3],
        seeds=[0],
        out=out,
        num_draws=200,
        sweep_steps=[1],
        sweep_observations=[1],
        batched_draws=10,
        batched_num_x=2,
        max_num_epochs=2,
    )


# The note may say that the batched timing was skipped, which depends on wall time.
STABLE = ("task", "budget", "method", "seed", "observation", "num_steps", "c2st", "num_draws",
          "epochs", "optimizer_steps", "calls_per_draw")  # fmt: skip


def stable_rows(csv_path: Path) -> list:
    """The rows' columns that do not depend on wall time or date, sorted."""
    import csv

    with open(csv_path) as f:
        return sorted(tuple(r[c] for c in STABLE) for r in csv.DictReader(f))
