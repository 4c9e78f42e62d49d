"""Before/after table of 3 sampling steps at noise levels 10, 0.4, 0.05 (the default) on the
reported seed 0, observations 1-5: CMPE's rows here against the previous default's rows on the
same simulations and the baselines of the reported run. Prints a markdown table (summary.md).

    python benchmarks/step_levels/summary.py > benchmarks/step_levels/summary.md
"""

import csv
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).parent
DIMS = {
    "two_moons": 2,
    "gaussian_mixture": 2,
    "slcp": 5,
    "gaussian_linear": 10,
    "bernoulli_glm": 10,
}
# The previous default's CMPE rows: two parameters in ../warm_default/ (named by the explicit
# variant that the default then trained), more in ../auto_steps/ (the 0.2.0 networks).
PREVIOUS = {1000: "cmpe:steps=10000,warm_start=0.5", 10000: "cmpe:warm_start=0.5"}
BASELINES = ("npe_maf", "npe_nsf", "fmpe")


def load(path: Path) -> dict:
    rows = defaultdict(list)
    for r in csv.DictReader(open(path)):
        if r["seed"] == "0":
            rows[(r["task"], int(r["budget"]), r["method"], r["num_steps"])].append(r)
    return rows


def mean(rows: list) -> float:
    return sum(float(r["c2st"]) for r in rows) / len(rows)


def chosen(rows: list) -> str:
    note = rows[0]["note"]  # "steps K chosen in S s"; rows before automatic steps: 3
    return note.split()[1] if note.startswith("steps") else "3"


def main() -> None:
    new, auto = load(HERE / "results.csv"), load(HERE.parent / "auto_steps/results.csv")
    warm, release = (
        load(HERE.parent / "warm_default/results.csv"),
        load(HERE.parent / "results/results.csv"),
    )
    mixture = load(HERE.parent / "gaussian_mixture/results.csv")
    print(
        "| task (parameters) | sims | before: steps | C2ST | after: steps | C2ST | change "
        "| 3 steps: grid | 0.4, 0.05 | NPE-maf | NPE-nsf | FMPE | after − best |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for task, dim in DIMS.items():
        for budget in (1000, 10000):
            if dim == 2:
                old, method = warm, PREVIOUS[budget]
                base = release if task == "two_moons" else mixture
            else:
                old, method, base = auto, "cmpe", release
            before, before3 = (
                old[(task, budget, method, "default")],
                old[(task, budget, method, "3")],
            )
            after, after3 = (
                new[(task, budget, "cmpe", "default")],
                new[(task, budget, "cmpe", "3")],
            )
            best = [mean(base[(task, budget, m, "default")]) for m in BASELINES]
            cells = [
                f"{task} ({dim})",
                f"{budget:,}",
                chosen(before),
                f"{mean(before):.3f}",
                chosen(after),
                f"{mean(after):.3f}",
                f"{mean(after) - mean(before):+.3f}",
                f"{mean(before3):.3f}",
                f"{mean(after3):.3f}",
                *(f"{b:.3f}" for b in best),
                f"{mean(after) - min(best):+.3f}",
            ]
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
