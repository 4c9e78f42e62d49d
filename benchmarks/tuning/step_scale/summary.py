"""Summary of `results.csv` of this folder: for each network, the choices of the step rule on
the three held-out sets with and without `per_dimension`, and the mean C2ST at the chosen
steps against that at 3 steps.

    python benchmarks/tuning/step_scale/summary.py benchmarks/tuning/step_scale/results.csv
"""

import csv
import sys
from collections import defaultdict


def main(path: str) -> None:
    chosen, c2st, three = defaultdict(list), defaultdict(list), {}
    for r in csv.DictReader(open(path)):
        key = (r["task"], int(r["budget"]), int(r["seed"]))
        variant = "per dimension" if r["per_dimension"] == "True" else "shared scale"
        chosen[key, variant].append(r["chosen"])
        c2st[key, variant].append(float(r["c2st_chosen"]))
        three[key] = float(r["c2st_3"])
    print("| task | budget | seed | C2ST at 3 | shared scale: chosen, C2ST ", end="")
    print("| per dimension: chosen, C2ST |")
    print("|---|---:|---:|---:|---|---|")
    total = defaultdict(list)
    for key in sorted(three):
        cells = []
        for variant in ("shared scale", "per dimension"):
            mean = sum(c2st[key, variant]) / len(c2st[key, variant])
            total[variant].append(mean)
            cells.append(f"{' '.join(chosen[key, variant])}, {mean:.3f}")
        print(f"| {key[0]} | {key[1]:,} | {key[2]} | {three[key]:.3f} | {cells[0]} | {cells[1]} |")
    base = sum(three.values()) / len(three)
    means = {v: sum(t) / len(t) for v, t in total.items()}
    print(
        f"\nMean over the {len(three)} networks: 3 steps {base:.4f}, shared scale "
        f"{means['shared scale']:.4f}, per dimension {means['per dimension']:.4f}"
    )


if __name__ == "__main__":
    main(sys.argv[1])
