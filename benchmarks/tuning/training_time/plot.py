"""C2ST against training time at 1,000 simulations (two moons, tuning seed 1, observations 6-8):
CMPE's budgets at batch 128 and at batch 512 without a warm start (`results.csv`), and with half
of the run warm (`warm/results.csv`, today's default up to 2 parameters), beside NPE-nsf and FMPE
of each run (open markers: the half-warm run's).

Usage (from the repository root): python benchmarks/tuning/training_time/plot.py
"""

import csv
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).parent


def read(path: Path, prefix: str) -> tuple:
    """Mean C2ST and training seconds of each method in `path`, keyed `prefix + method`."""
    scores, seconds = defaultdict(list), {}
    with open(path) as f:
        for row in csv.DictReader(f):
            scores[prefix + row["method"]].append(float(row["c2st"]))
            seconds[prefix + row["method"]] = float(row["train_time_s"])
    return {m: sum(v) / len(v) for m, v in scores.items()}, seconds


def main() -> None:
    mean, seconds = read(HERE / "results.csv", "")
    warm_mean, warm_seconds = read(HERE / "warm" / "results.csv", "warm ")
    mean.update(warm_mean)
    seconds.update(warm_seconds)
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for label, pick in [
        ("CMPE, no warm start", lambda m: m == "cmpe" or m.startswith("cmpe:") and "512" not in m),
        ("CMPE, batch 512, lr 2e-3", lambda m: m.startswith("cmpe:") and "512" in m),
        ("CMPE, half warm", lambda m: m.startswith("warm cmpe")),
    ]:
        points = sorted((seconds[m], mean[m]) for m in mean if pick(m))
        ax.plot(*zip(*points), "o-", label=label)
    for method, marker in [("npe_nsf", "s"), ("fmpe", "^")]:
        (first,) = ax.plot(seconds[method], mean[method], marker, markersize=9, label=method)
        run, color = "warm " + method, first.get_color()
        ax.plot(seconds[run], mean[run], marker, color=color, markersize=9, mfc="none")
    ax.set(xscale="log", xlabel="training time (s), one thread", ylabel="C2ST")
    ax.set_title("two moons, 1,000 simulations", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(HERE / "c2st_vs_training_time.png", dpi=120)
    for m in sorted(mean, key=lambda m: seconds[m]):
        print(f"{m:60s} {seconds[m]:7.1f} s  C2ST {mean[m]:.3f}")


if __name__ == "__main__":
    main()
