"""C2ST against training time at 1,000 simulations (two moons, tuning seed 1, observations 6-8):
CMPE's budgets at batch 128 and at batch 512, beside NPE-nsf and FMPE.

Usage (from the repository root): python benchmarks/tuning/training_time/plot.py
"""

import csv
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).parent


def main() -> None:
    scores, seconds = defaultdict(list), {}
    with open(HERE / "results.csv") as f:
        for row in csv.DictReader(f):
            scores[row["method"]].append(float(row["c2st"]))
            seconds[row["method"]] = float(row["train_time_s"])
    mean = {m: sum(v) / len(v) for m, v in scores.items()}
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for label, pick in [
        ("CMPE, batch 128", lambda m: m == "cmpe" or ("steps=" in m and "512" not in m)),
        ("CMPE, batch 512, lr 2e-3", lambda m: "512" in m),
    ]:
        points = sorted((seconds[m], mean[m]) for m in mean if pick(m))
        ax.plot(*zip(*points), "o-", label=label)
    for method, marker in [("npe_nsf", "s"), ("fmpe", "^")]:
        ax.plot(seconds[method], mean[method], marker, markersize=9, label=method)
    ax.set(xscale="log", xlabel="training time (s), one thread", ylabel="C2ST")
    ax.set_title("two moons, 1,000 simulations", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(HERE / "c2st_vs_training_time.png", dpi=120)
    for m in sorted(mean, key=lambda m: seconds[m]):
        print(f"{m:60s} {seconds[m]:7.1f} s  C2ST {mean[m]:.3f}")


if __name__ == "__main__":
    main()
