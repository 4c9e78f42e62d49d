r"""Summaries of benchmark rows: markdown tables, plots and a mean over seeds.

The benchmark command writes `results.md` and the plots with the tables here. As a command,
this module prints the mean C2ST per (task, budget, method), per seed and over seeds, of any
number of results CSVs and sweep files (JSON lines holding the same rows, as
`benchmarks/scripts/sweep.py` writes them), e.g. from the repository root:

    python -m sbi_cmpe.benchmark.report benchmarks/tuning/p_mean/sweep_call1.jsonl
    python -m sbi_cmpe.benchmark.report benchmarks/results/results.csv \
        benchmarks/results_seeds.csv --min-seeds 2
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path
from statistics import mean
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from sbi_cmpe.benchmark.run import C2ST_NAME
from sbi_cmpe.benchmark.store import iter_rows

__all__ = [
    "summarize",
    "markdown_table",
    "steps_table",
    "targets_table",
    "before_after_table",
    "plot",
    "read_rows",
    "seed_summary",
    "seed_summary_text",
    "main",
]

LABELS = {
    "cmpe": "CMPE",
    "npe_maf": "NPE-maf",
    "npe_nsf": "NPE-nsf",
    "fmpe": "FMPE",
    "npse": "NPSE",
    "cmpe:z_score_theta=linear": "CMPE, linear z-score",
}


def _f(value: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def summarize(csv_path: str | Path) -> Dict[Tuple[str, int, str], Dict[str, float]]:
    """Mean over observations (and seeds) per (task, budget, method), default steps."""
    groups: Dict[Tuple[str, int, str], List[dict]] = defaultdict(list)
    for r in iter_rows(csv_path):
        if r["num_steps"] == "default":
            groups[(r["task"], int(r["budget"]), r["method"])].append(r)
    out = {}
    for key, rows in groups.items():
        batched = [_f(r["batched_time_s"]) for r in rows if r["batched_time_s"] != ""]
        out[key] = dict(
            c2st=mean(_f(r["c2st"]) for r in rows),
            n=len(rows),
            train_time_s=mean(_f(r["train_time_s"]) for r in rows),
            epochs=mean(_f(r["epochs"]) for r in rows),
            sample_time_10k_s=mean(_f(r["sample_time_10k_s"]) for r in rows),
            batched_time_s=mean(batched) if batched else math.nan,
        )
    return out


def markdown_table(csv_path: str | Path) -> str:
    """One line per (task, budget, method): C2ST (mean over observations) and costs."""
    summary = summarize(csv_path)
    lines = [
        f"C2ST: {C2ST_NAME}; mean over the observations in the CSV; 0.5 is best.",
        "",
        "| task | budget | method | C2ST | train (s) | epochs | 10k draws (s) | batched (s) |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for (task, budget, method), s in sorted(summary.items()):
        batched = "n/a" if math.isnan(s["batched_time_s"]) else f"{s['batched_time_s']:.2f}"
        lines.append(
            f"| {task} | {budget:,} | {LABELS.get(method, method)} | {s['c2st']:.3f} | "
            f"{s['train_time_s']:.0f} | {s['epochs']:.0f} | {s['sample_time_10k_s']:.3f} | "
            f"{batched} |"
        )
    return "\n".join(lines)


def steps_table(csv_path: str | Path) -> str:
    """CMPE's step sweep: C2ST and time for 10k draws per number of steps."""
    groups: Dict[Tuple[str, int, str], List[dict]] = defaultdict(list)
    for r in iter_rows(csv_path):
        if r["method"].startswith("cmpe") and r["num_steps"] != "default":
            groups[(r["task"], int(r["budget"]), r["num_steps"])].append(r)
    lines = ["| task | budget | steps | C2ST | 10k draws (s) |", "|---|---:|---:|---:|---:|"]
    for (task, budget, k), rows in sorted(
        groups.items(), key=lambda i: (i[0][0], i[0][1], int(i[0][2]))
    ):
        lines.append(
            f"| {task} | {budget:,} | {k} | {mean(_f(r['c2st']) for r in rows):.3f} | "
            f"{mean(_f(r['sample_time_10k_s']) for r in rows):.3f} |"
        )
    return "\n".join(lines)


def _ratio(a: float, b: float) -> str:
    return "n/a" if math.isnan(a) or math.isnan(b) or b == 0 else f"{a / b:.2f}"


def targets_table(csv_path: str | Path) -> str:
    """CMPE against the baselines, per (task, budget), in the terms of the project's targets.

    Accuracy: CMPE's C2ST minus the better of NPE-nsf and FMPE (negative: CMPE is better).
    Speed: CMPE's time for 10k draws and for `sample_batched` over NPE-maf's, FMPE's 10k-draw
    time over CMPE's, and CMPE's training time over FMPE's.
    """
    summary = summarize(csv_path)
    lines = [
        "| task | budget | CMPE | NPE-nsf | FMPE | CMPE − best | 10k draws: CMPE / NPE-maf "
        "| batched: CMPE / NPE-maf | FMPE / CMPE draws | train: CMPE / FMPE |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    nan = dict.fromkeys(("c2st", "train_time_s", "sample_time_10k_s", "batched_time_s"), math.nan)
    for task, budget in sorted({(t, b) for t, b, m in summary if m == "cmpe"}):
        c, nsf, fm, maf = (
            summary.get((task, budget, m), nan) for m in ("cmpe", "npe_nsf", "fmpe", "npe_maf")
        )
        best = min(nsf["c2st"], fm["c2st"])
        lines.append(
            f"| {task} | {budget:,} | {c['c2st']:.3f} | {nsf['c2st']:.3f} | {fm['c2st']:.3f} | "
            f"{c['c2st'] - best:+.3f} | "
            f"{_ratio(c['sample_time_10k_s'], maf['sample_time_10k_s'])} | "
            f"{_ratio(c['batched_time_s'], maf['batched_time_s'])} | "
            f"{_ratio(fm['sample_time_10k_s'], c['sample_time_10k_s'])} | "
            f"{_ratio(c['train_time_s'], fm['train_time_s'])} |"
        )
    return "\n".join(lines)


def before_after_table(before_csv: str | Path, after_csv: str | Path) -> str:
    """CMPE's C2ST and costs in two CSVs (e.g. two releases' defaults), side by side."""
    before, after = summarize(before_csv), summarize(after_csv)
    lines = [
        "| task | budget | C2ST before | C2ST after | train (s) before | after "
        "| 10k draws (s) before | after |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key in sorted(k for k in after if k[2] == "cmpe" and k in before):
        b, a = before[key], after[key]
        lines.append(
            f"| {key[0]} | {key[1]:,} | {b['c2st']:.3f} | {a['c2st']:.3f} | "
            f"{b['train_time_s']:.0f} | {a['train_time_s']:.0f} | "
            f"{b['sample_time_10k_s']:.3f} | {a['sample_time_10k_s']:.3f} |"
        )
    return "\n".join(lines)


def plot(csv_path: str | Path, out: str | Path) -> List[Path]:
    """C2ST and training time against budget, and C2ST against sampling time, one panel
    per task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarize(csv_path)
    tasks = sorted({t for t, _, _ in summary})
    methods = sorted({m for _, _, m in summary})
    out = Path(out)
    paths = []

    against_budget = [
        ("c2st", "C2ST", dict(ylim=(0.45, 1.0)), "c2st_vs_budget.png"),
        ("train_time_s", "training time (s)", dict(yscale="log"), "train_time_vs_budget.png"),
    ]
    for key, ylabel, axis, name in against_budget:
        fig, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks), 3), squeeze=False)
        for ax, task in zip(axes[0], tasks):
            for m in methods:
                pts = sorted(
                    (b, s[key]) for (t, b, mm), s in summary.items() if t == task and mm == m
                )
                if pts:
                    ax.plot(*zip(*pts), marker="o", label=LABELS.get(m, m))
            ax.set(title=task, xscale="log", xlabel="simulations", **axis)
        axes[0][0].set_ylabel(ylabel)
        axes[0][-1].legend(fontsize=7)
        fig.tight_layout()
        paths.append(out / name)
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)

    sweep: Dict[Tuple[str, int], List[Tuple[float, float]]] = defaultdict(list)
    groups: Dict[Tuple[str, int, int], List[dict]] = defaultdict(list)
    for r in iter_rows(csv_path):
        if r["method"].startswith("cmpe") and r["num_steps"] != "default":
            groups[(r["task"], int(r["budget"]), int(r["num_steps"]))].append(r)
    for (task, budget, _), rows in sorted(groups.items()):
        sweep[(task, budget)].append(
            (mean(_f(r["sample_time_10k_s"]) for r in rows), mean(_f(r["c2st"]) for r in rows))
        )
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks), 3), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        budget = max(b for t, b, _ in summary if t == task)
        for m in methods:
            s = summary.get((task, budget, m))
            if s:
                ax.scatter(s["sample_time_10k_s"], s["c2st"], label=LABELS.get(m, m))
        if sweep.get((task, budget)):
            ax.plot(*zip(*sorted(sweep[(task, budget)])), "k:", marker=".", label="CMPE steps")
        ax.set(
            title=f"{task} ({budget:,})", xscale="log", xlabel="s per 10k draws", ylim=(0.45, 1.0)
        )
    axes[0][0].set_ylabel("C2ST")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    paths.append(out / "c2st_vs_sampling_time.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths


def read_rows(paths: Iterable[str | Path]) -> List[dict]:
    """The rows of results CSVs and of sweep files (`.jsonl`, one row as JSON per line),
    as dicts of strings, in the order of `paths`."""
    rows: List[dict] = []
    for path in paths:
        path = Path(path)
        if path.suffix == ".jsonl":
            with path.open() as f:
                rows += [
                    {k: "" if v is None else str(v) for k, v in json.loads(line).items()}
                    for line in f
                    if line.strip()
                ]
        else:
            rows += list(iter_rows(path))
    return rows


SeedKey = Tuple[str, int, str]


def seed_summary(
    rows: Iterable[dict],
    methods: Optional[Sequence[str]] = None,
    min_seeds: int = 1,
) -> Dict[SeedKey, Dict]:
    """Mean C2ST per (task, budget, method): per seed and over all its rows.

    Rows of the CMPE step sweep (`num_steps` other than `"default"`) and rows without a C2ST
    (jobs that failed) are left out.

    Arguments:
        rows: Benchmark rows (see `read_rows`).
        methods: Keep only these methods; `None` keeps all.
        min_seeds: Keep only (task, budget, method) groups with at least this many seeds.

    Returns:
        For each (task, budget, method): `seeds`, a dict seed -> `{"c2st", "n",
        "train_time_s"}` (means over the seed's observations), and `c2st` and `n` over
        all rows of the group.
    """
    groups: Dict[SeedKey, Dict[int, List[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r.get("num_steps", "default") != "default" or r.get("c2st", "") == "":
            continue
        if methods is not None and r["method"] not in methods:
            continue
        groups[(r["task"], int(r["budget"]), r["method"])][int(r["seed"])].append(r)
    out = {}
    for key, per_seed in groups.items():
        if len(per_seed) < min_seeds:
            continue
        every = [_f(r["c2st"]) for seed_rows in per_seed.values() for r in seed_rows]
        out[key] = dict(
            seeds={
                seed: dict(
                    c2st=mean(_f(r["c2st"]) for r in seed_rows),
                    n=len(seed_rows),
                    train_time_s=mean(_f(r.get("train_time_s")) for r in seed_rows),
                )
                for seed, seed_rows in sorted(per_seed.items())
            },
            c2st=mean(every),
            n=len(every),
        )
    return out


def seed_summary_text(summary: Dict[SeedKey, Dict], markdown: bool = False) -> str:
    """`seed_summary` as one line per (task, budget, method), or as a markdown table:
    each seed's mean C2ST with its training seconds in brackets, then the mean over all
    rows and their number."""
    lines = []
    if markdown:
        lines += [
            "| task | budget | method | C2ST per seed (training s) | mean C2ST | rows |",
            "|---|---:|---|---|---:|---:|",
        ]
    for (task, budget, method), s in sorted(summary.items()):
        seeds = ", ".join(
            f"seed {seed}: {v['c2st']:.3f} ({v['train_time_s']:.2f} s)"
            for seed, v in s["seeds"].items()
        )
        if markdown:
            lines.append(
                f"| {task} | {budget:,} | {method} | {seeds} | {s['c2st']:.3f} | {s['n']} |"
            )
        else:
            lines.append(f"{task} {budget} {method} | {seeds} | mean {s['c2st']:.3f} (n={s['n']})")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> str:
    """Command line: print `seed_summary` of results CSVs and sweep files."""
    parser = argparse.ArgumentParser(
        prog="python -m sbi_cmpe.benchmark.report",
        description="Mean C2ST per (task, budget, method), per seed and over seeds, of "
        "benchmark results CSVs and sweep JSON lines (rows of the CMPE step sweep left out).",
    )
    parser.add_argument("files", nargs="+", help="results.csv or sweep .jsonl files")
    parser.add_argument("--methods", nargs="+", default=None, help="keep only these methods")
    parser.add_argument(
        "--min-seeds",
        type=int,
        default=1,
        help="keep only (task, budget, method) groups with at least this many seeds",
    )
    parser.add_argument("--markdown", action="store_true", help="a markdown table")
    args = parser.parse_args(argv)
    rows = read_rows(args.files)
    for r in rows:
        if r.get("c2st", "") == "":
            print(f"failed: {r.get('task')} {r.get('budget')} {r.get('method')}: {r.get('note')}")
    text = seed_summary_text(seed_summary(rows, args.methods, args.min_seeds), args.markdown)
    print(text)
    return text


if __name__ == "__main__":
    main()
