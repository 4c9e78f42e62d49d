"""C2ST against training time at 1,000 simulations on the five public tasks (tuning seed 1,
observations 6-8): CMPE's budgets in optimizer steps (`results.csv`, and the default run of
`../../linear_z_score/results_sbibm_1000.csv`, same seed, observations and simulations), beside
NPE-nsf and FMPE. Prints each point and writes `c2st_vs_training_time.png`.

Usage (from the repository root):
python benchmarks/tuning/training_time/five_tasks/plot.py
"""

import csv
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

HERE = Path(__file__).parent
DEFAULT_RUN = HERE.parents[1] / "linear_z_score" / "results_sbibm_1000.csv"
TASKS = ["two_moons", "gaussian_mixture", "slcp", "gaussian_linear", "bernoulli_glm"]


def read(path: Path, keep=lambda method: True) -> dict:
    """{(task, method): (training seconds, mean C2ST over the chosen-steps rows)}."""
    scores, seconds = defaultdict(list), {}
    with open(path) as f:
        for row in csv.DictReader(f):
            if row["num_steps"] != "default" or not keep(row["method"]):
                continue
            key = (row["task"], row["method"])
            scores[key].append(float(row["c2st"]))
            seconds[key] = float(row["train_time_s"])
    return {key: (seconds[key], sum(v) / len(v)) for key, v in scores.items()}


def is_budget(method: str) -> bool:
    """The default CMPE or one with only its budget changed (`cmpe:steps=N`)."""
    return method == "cmpe" or method.startswith("cmpe:steps=") and "," not in method


def main() -> None:
    points = read(HERE / "results.csv")
    points.update(read(DEFAULT_RUN, keep=lambda method: method == "cmpe"))
    fig, axes = plt.subplots(1, len(TASKS), figsize=(15, 3.2))
    for ax, task in zip(axes, TASKS):
        cmpe = sorted(v for (t, m), v in points.items() if t == task and is_budget(m))
        ax.plot(*zip(*cmpe), "o-", label="CMPE (budgets; last: default)")
        for method, marker in [("npe_nsf", "s"), ("fmpe", "^")]:
            if (task, method) in points:
                ax.plot(*points[task, method], marker, markersize=9, label=method)
        ax.set(xscale="log", xlabel="training time (s), one thread", title=task)
        ax.xaxis.set_minor_formatter(NullFormatter())
    axes[0].set_ylabel("C2ST")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(HERE / "c2st_vs_training_time.png", dpi=110)
    for (task, method), (sec, c2st) in sorted(points.items()):
        print(f"{task:17s} {method:40s} {sec:7.1f} s  C2ST {c2st:.3f}")


if __name__ == "__main__":
    main()
