"""The benchmark's cache on disk: simulations and trained posteriors, one file each.

Every method of a (task, budget, seed) trains on the same cached simulations, and a
trained posterior is reused when the benchmark is run again. File names (this module
writes and reads them; nothing else spells them out):

- `sims_<task>_<budget>_<seed>.pt`: `{"theta": (budget, D), "x": (budget, *x_shape)}`;
- `posterior_<task>_<budget>_<label>_<seed>.pt`: a `Trained`, where `<label>` is the
  method with every run of characters outside `[A-Za-z0-9_.-]` replaced by `_`.

A file is written under a temporary name and renamed when complete, so a killed run leaves
no half-written file under these names; a file that cannot be read all the same (truncated
or corrupted on disk, or written by another version) is reported in a warning, renamed to
`<name>.unreadable` (kept for inspection) and made again.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple, Optional, Tuple

import torch
from torch import Tensor

from sbi_cmpe.benchmark.methods import Trained, train_method
from sbi_cmpe.benchmark.tasks import Task

__all__ = [
    "CachedFile",
    "cached_posteriors",
    "cached_simulations",
    "method_label",
    "posterior_path",
    "simulations",
    "simulations_path",
    "train_seeded",
    "trained",
]

# Task names hold no "_<digits>_", so the shortest task before the budget is the task.
_SIMS = re.compile(r"sims_(?P<task>.+?)_(?P<budget>\d+)_(?P<seed>\d+)\.pt")
_POSTERIOR = re.compile(
    r"posterior_(?P<task>.+?)_(?P<budget>\d+)_(?P<method>[A-Za-z0-9_.-]+)_(?P<seed>\d+)\.pt"
)


class CachedFile(NamedTuple):
    """A file of the cache and what its name says (`method` is the label of a posterior,
    `None` for simulations)."""

    path: Path
    task: str
    budget: int
    seed: int
    method: Optional[str] = None


def method_label(method: str) -> str:
    """The method as it appears in a file name (`"cmpe:steps=5000"` -> `"cmpe_steps_5000"`)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", method)


def simulations_path(cache: Path, task: str, budget: int, seed: int) -> Path:
    """Where the simulations of (task, budget, seed) are cached."""
    return Path(cache) / f"sims_{task}_{budget}_{seed}.pt"


def posterior_path(cache: Path, task: str, budget: int, method: str, seed: int) -> Path:
    """Where the posterior of `method` trained on (task, budget, seed) is cached."""
    return Path(cache) / f"posterior_{task}_{budget}_{method_label(method)}_{seed}.pt"


def cached_simulations(cache: Path, seed: Optional[int] = None) -> Iterator[CachedFile]:
    """The cached simulation files, sorted by name; only those of `seed` if given."""
    for path in sorted(Path(cache).glob("sims_*.pt")):
        match = _SIMS.fullmatch(path.name)
        if match is not None and (seed is None or int(match["seed"]) == seed):
            yield CachedFile(path, match["task"], int(match["budget"]), int(match["seed"]))


def cached_posteriors(cache: Path) -> Iterator[CachedFile]:
    """The cached posterior files, sorted by name."""
    for path in sorted(Path(cache).glob("posterior_*.pt")):
        match = _POSTERIOR.fullmatch(path.name)
        if match is not None:
            yield CachedFile(
                path, match["task"], int(match["budget"]), int(match["seed"]), match["method"]
            )


def _save(obj: Any, path: Path) -> None:
    """`torch.save` to a temporary name, then an atomic rename to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    torch.save(obj, partial)
    os.replace(partial, path)


def _load(path: Path, check: Callable[[Any], bool]) -> Optional[Any]:
    """The object in `path`, or `None` when there is none or it is unreadable (then the
    file is renamed to `<name>.unreadable`, with a warning that names it)."""
    if not path.exists():
        return None
    try:
        obj = torch.load(path, weights_only=False)
        if not check(obj):
            raise ValueError(f"unexpected content ({type(obj).__name__})")
    except Exception as err:  # any unreadable file is made again
        aside = path.with_name(path.name + ".unreadable")
        warnings.warn(
            f"The cached file {path} is unreadable ({type(err).__name__}: {err}); it is "
            f"moved to {aside.name} and made again.",
            stacklevel=3,
        )
        os.replace(path, aside)
        return None
    return obj


def simulations(task: Task, budget: int, seed: int, cache: Path) -> Tuple[Tensor, Tensor]:
    """`budget` simulations of `task` from its prior, made once per seed and then loaded.

    Arguments:
        task: The task (prior and simulator).
        budget: Number of simulations.
        seed: Seed of `torch.manual_seed` before the prior draws.
        cache: The cache folder (created if missing).

    Returns:
        `theta` of shape `(budget, D)` and `x` of shape `(budget, *x_shape)`.
    """
    path = simulations_path(cache, task.name, budget, seed)
    data = _load(
        path,
        lambda d: isinstance(d, dict) and len(d.get("theta", ())) == len(d.get("x", ())) == budget,
    )
    if data is not None:
        return data["theta"], data["x"]
    torch.manual_seed(seed)
    theta = task.prior.sample((budget,))
    x = task.simulator(theta)
    _save({"theta": theta, "x": x}, path)
    return theta, x


def trained(
    task: Task,
    budget: int,
    method: str,
    seed: int,
    cache: Path,
    max_num_epochs: Optional[int] = None,
) -> Trained:
    """`method` trained on the cached simulations of (task, budget, seed), once, then loaded.

    Training is `train_seeded`.

    Arguments:
        task: The task.
        budget: Number of simulations.
        method: A method of `sbi_cmpe.benchmark.methods.METHODS`, with options.
        seed: Seed of the simulations and of the training run.
        cache: The cache folder.
        max_num_epochs: Cap on epochs (for smoke runs); `None` keeps the defaults.

    Returns:
        The trained posterior with its training time, epochs and optimizer steps.
    """
    path = posterior_path(cache, task.name, budget, method, seed)
    cached = _load(path, lambda t: isinstance(t, Trained))
    if cached is not None:
        return cached
    theta, x = simulations(task, budget, seed, cache)
    result = train_seeded(task, method, theta, x, seed, max_num_epochs)
    _save(result, path)
    return result


def train_seeded(
    task: Task,
    method: str,
    theta: Tensor,
    x: Tensor,
    seed: int,
    max_num_epochs: Optional[int] = None,
) -> Trained:
    """The benchmark's training run: `method` on `(theta, x)` from `torch.manual_seed(seed)`,
    with the methods' warnings silenced (not cached; see `trained`).

    Arguments:
        task: The task (its prior, and the embedding net every method gets, if any).
        method: A method of `sbi_cmpe.benchmark.methods.METHODS`, with options.
        theta: Parameters `(N, D)`.
        x: Simulations `(N, *x_shape)`.
        seed: Seed of the training run.
        max_num_epochs: Cap on epochs (for smoke runs); `None` keeps the defaults.

    Returns:
        The trained posterior with its training time, epochs and optimizer steps.
    """
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return train_method(method, task.prior, theta, x, max_num_epochs, task.embedding)
