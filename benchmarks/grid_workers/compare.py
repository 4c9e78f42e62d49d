"""Rows of the seed-0 grid run in one process (sequential/) against the same grid on two Dask
workers (workers2/): every column that is not a time must be equal, row by row.

Usage: python benchmarks/grid_workers/compare.py > benchmarks/grid_workers/compare.txt
"""

import re
from pathlib import Path

from sbi_cmpe.benchmark.store import iter_rows

HERE = Path(__file__).parent
KEY = ("task", "budget", "method", "seed", "observation", "num_steps")
TIMES = {"train_time_s", "sample_time_10k_s", "batched_time_s", "date"}


def rows(folder: str) -> dict:
    """Rows keyed by (task, budget, method, seed, observation, num_steps)."""
    out = {}
    for r in iter_rows(HERE / folder / "results.csv"):
        key = tuple(r[c] for c in KEY)
        assert key not in out, f"{folder}: row {key} written twice"
        r["note"] = re.sub(r" in [0-9.]+ s", " in ... s", r["note"])  # the choice's seconds
        out[key] = r
    return out


def main() -> None:
    one, two = rows("sequential"), rows("workers2")
    print(f"rows: one process {len(one)}, two workers {len(two)}")
    print(f"keys equal: {sorted(one) == sorted(two)}")
    differ = 0
    for key in sorted(set(one) & set(two)):
        cols = [c for c in one[key] if c not in TIMES and one[key][c] != two[key][c]]
        if cols:
            differ += 1
            print("differs:", key, {c: (one[key][c], two[key][c]) for c in cols})
    print(f"rows whose non-time columns differ: {differ}")
    print("\nseconds per job (one process / two workers), from the rows:")
    for name in ("train_time_s", "sample_time_10k_s"):
        a = sum(float(r[name]) for r in one.values() if r["num_steps"] == "default")
        b = sum(float(r[name]) for r in two.values() if r["num_steps"] == "default")
        print(f"  sum of {name}: {a:.0f} / {b:.1f} (ratio {b / a:.2f})")


if __name__ == "__main__":
    main()
