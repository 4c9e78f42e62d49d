"""CMPE with `consistency_nn(z_score_theta="linear")` on the reported seed 0, observations 1-5,
against CMPE at today's defaults (`../step_levels/`, the same seeded simulations) and the
baselines of the reported run (gaussian_mixture's from `../gaussian_mixture/`, one mixture
component per simulation). Prints a markdown table (summary.md) and the count of pairs at or
below the best baseline.

    python benchmarks/linear_z_score/summary.py > benchmarks/linear_z_score/summary.md
"""

import csv
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).parent
TASKS = {
    "two_moons": 2,
    "gaussian_mixture": 2,
    "slcp": 5,
    "gaussian_linear": 10,
    "bernoulli_glm": 10,
}
LINEAR = "cmpe:z_score_theta=linear"
BASELINES = ("npe_maf", "npe_nsf", "fmpe")


def load(path: Path) -> dict:
    """{(task, budget, method): C2ST rows at the steps training chose, seed 0}."""
    rows = defaultdict(list)
    for r in csv.DictReader(open(path)):
        if r["seed"] == "0" and r["num_steps"] == "default":
            rows[(r["task"], int(r["budget"]), r["method"])].append(r)
    return rows


def mean(rows: list) -> float:
    assert len(rows) == 5, "observations 1-5"
    return sum(float(r["c2st"]) for r in rows) / len(rows)


def chosen(rows: list) -> str:
    return rows[0]["note"].split()[1]  # "steps K chosen in S s"


def main() -> None:
    linear, default = load(HERE / "results.csv"), load(HERE.parent / "step_levels/results.csv")
    release = load(HERE.parent / "results/results.csv")
    mixture = load(HERE.parent / "gaussian_mixture/results.csv")
    print(
        "| task (parameters) | sims | default: steps | C2ST | linear: steps | C2ST | change "
        "| NPE-maf | NPE-nsf | FMPE | default − best | linear − best |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    counts = {"default": [0, 0.0], "linear": [0, 0.0]}  # pairs at or below, largest margin
    for task, dim in TASKS.items():
        base_rows = mixture if task == "gaussian_mixture" else release
        for budget in (1000, 10000):
            old = default[(task, budget, "cmpe")]
            new = linear[(task, budget, LINEAR)]
            base = [mean(base_rows[(task, budget, m)]) for m in BASELINES]
            margins = {"default": mean(old) - min(base), "linear": mean(new) - min(base)}
            for name, margin in margins.items():
                counts[name][0] += margin <= 0
                counts[name][1] = max(counts[name][1], margin)
            cells = [
                f"{task} ({dim})",
                f"{budget:,}",
                chosen(old),
                f"{mean(old):.3f}",
                chosen(new),
                f"{mean(new):.3f}",
                f"{mean(new) - mean(old):+.3f}",
                *(f"{b:.3f}" for b in base),
                f"{margins['default']:+.3f}",
                f"{margins['linear']:+.3f}",
            ]
            print("| " + " | ".join(cells) + " |")
    print()
    for name, (at_or_below, largest) in counts.items():
        print(f"{name}: at or below the best baseline on {at_or_below} of 10,", end=" ")
        print(f"largest margin {largest:+.3f}")


if __name__ == "__main__":
    main()
