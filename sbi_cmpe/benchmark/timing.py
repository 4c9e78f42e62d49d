"""Sampling times of cached posteriors, measured back to back in one process.

The benchmark times each method right after training it, so its timings depend on what
else ran on the machine at that moment. This module loads every cached posterior of a
benchmark folder and times them one after the other, best of `repeats`, for a fair
comparison of sampling speed on a quiet machine:

    python -m sbi_cmpe.benchmark.timing --out benchmark_results
"""

from __future__ import annotations

import argparse
import re
import warnings
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch

from sbi_cmpe.benchmark.methods import METHODS, Trained, timed
from sbi_cmpe.benchmark.report import LABELS
from sbi_cmpe.benchmark.tasks import load_task

__all__ = ["time_cached_posteriors", "timing_table"]

_NAME = re.compile(
    rf"posterior_(?P<task>.+)_(?P<budget>\d+)_(?P<method>{'|'.join(METHODS)})_(?P<seed>\d+)\.pt"
)


def _best_of(fn: Callable[..., Any], repeats: int, *args: Any, **kwargs: Any) -> float:
    """The least wall time of `repeats` calls of `fn(*args, **kwargs)`."""
    return min(timed(partial(fn, *args, **kwargs))[1] for _ in range(repeats))


def time_cached_posteriors(
    out: str | Path,
    num_draws: int = 10_000,
    batched_draws: int = 1_000,
    batched_num_x: int = 100,
    repeats: int = 3,
    max_single_s: float = 5.0,
    max_batched_s: float = 30.0,
    batched: bool = True,
    methods: Optional[Sequence[str]] = None,
) -> List[Dict]:
    """Time `sample` and `sample_batched` for every cached posterior in `<out>/cache`.

    Arguments:
        out: A benchmark output folder.
        num_draws: Draws for one x (observation 1).
        batched_draws: Draws per x for `sample_batched`.
        batched_num_x: Number of x for `sample_batched` (prior predictive, seed 0).
        repeats: Timings of `num_draws` draws; the best is kept (`sample_batched` is
            timed once).
        max_single_s: `sample_batched` is skipped when `num_draws` draws take longer.
        max_batched_s: Time limit of `sample_batched` (prior-support rejection can be
            slow); a time at this limit means it was cut short.
        batched: Whether `sample_batched` is timed at all.
        methods: Methods to time; `None` for all cached ones.

    Returns:
        One dict per posterior: task, budget, method, seed, seconds for `num_draws`
        draws and for `sample_batched` (`nan` where skipped).
    """
    rows = []
    for path in sorted(Path(out, "cache").glob("posterior_*.pt")):
        match = _NAME.fullmatch(path.name)
        if match is None or (methods is not None and match["method"] not in methods):
            continue
        trained: Trained = torch.load(path, weights_only=False)
        task = load_task(match["task"])
        posterior, x_o = trained.posterior, task.observation(1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            posterior.sample((100,), x=x_o, show_progress_bars=False)  # warm-up
            single = _best_of(
                posterior.sample, repeats, (num_draws,), x=x_o, show_progress_bars=False
            )
            batched_s = float("nan")
            if batched and single <= max_single_s:
                torch.manual_seed(0)
                xs = task.simulator(task.prior.sample((batched_num_x,)))
                try:
                    batched_s = _best_of(  # once: it is long, and it may hit the time limit
                        posterior.sample_batched,
                        1,
                        (batched_draws,),
                        x=xs,
                        max_sampling_time=max_batched_s,
                        return_partial_on_timeout=True,
                        show_progress_bars=False,
                    )
                except RuntimeError:  # sbi gives up when nothing is accepted in time
                    batched_s = float("inf")
        rows.append(
            dict(
                task=match["task"],
                budget=int(match["budget"]),
                method=match["method"],
                seed=int(match["seed"]),
                sample_s=single,
                batched_s=batched_s,
            )
        )
    return rows


def timing_table(rows: List[Dict], max_batched_s: float = 30.0) -> str:
    """Markdown table of `time_cached_posteriors` rows ("n/a": not timed)."""
    lines = [
        "| task | budget | method | 10k draws (s) | batched (s) |",
        "|---|---:|---|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: (r["task"], r["budget"], r["method"])):
        batched = "n/a" if r["batched_s"] != r["batched_s"] else f"{r['batched_s']:.2f}"
        batched = f"> {max_batched_s:.0f} (limit)" if r["batched_s"] == float("inf") else batched
        lines.append(
            f"| {r['task']} | {r['budget']:,} | {LABELS.get(r['method'], r['method'])} | "
            f"{r['sample_s']:.3f} | {batched} |"
        )
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> str:
    """Command line: time the cached posteriors of a benchmark folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmark_results")
    parser.add_argument("--methods", nargs="*", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--no-batched", action="store_true", help="time `sample` only")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = time_cached_posteriors(
        args.out,
        methods=args.methods,
        repeats=args.repeats,
        batched=not args.no_batched,
    )
    table = timing_table(rows)
    Path(args.out, "timing.md").write_text(table + "\n")
    print(table)
    return table


if __name__ == "__main__":
    main()
