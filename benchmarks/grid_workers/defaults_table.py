"""CMPE at the current defaults against the baselines, from the one-process grid run
(sequential/, seed 0, observation 1, alone on the machine): C2ST at the automatic steps and at
the 0.2.0 default of 3 fixed steps (the same network), seconds for 10,000 draws and for
training, and their ratios.

Usage: python benchmarks/grid_workers/defaults_table.py > benchmarks/grid_workers/defaults_table.md
"""

from pathlib import Path

from sbi_cmpe.benchmark.store import iter_rows

HERE = Path(__file__).parent


def main() -> None:
    rows = {
        (r["task"], int(r["budget"]), r["method"], r["num_steps"]): r
        for r in iter_rows(HERE / "sequential" / "results.csv")
    }
    pairs = sorted({(t, b) for t, b, _, _ in rows})

    def get(task: str, budget: int, method: str, col: str, steps: str = "default") -> float:
        return float(rows[(task, budget, method, steps)][col])

    print(
        "| task | budget | steps chosen | C2ST 3 steps | C2ST chosen | 10k draws: CMPE (s) "
        "| NPE-maf (s) | FMPE (s) | CMPE / NPE-maf | FMPE / CMPE | train: CMPE (s) "
        "| NPE-nsf (s) | FMPE (s) | CMPE / NPE-nsf | CMPE / FMPE |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for t, b in pairs:
        s = {m: get(t, b, m, "sample_time_10k_s") for m in ("cmpe", "npe_maf", "fmpe")}
        tr = {m: get(t, b, m, "train_time_s") for m in ("cmpe", "npe_nsf", "fmpe")}
        print(
            f"| {t} | {b:,} | {rows[(t, b, 'cmpe', 'default')]['calls_per_draw']} "
            f"| {get(t, b, 'cmpe', 'c2st', '3'):.3f} | {get(t, b, 'cmpe', 'c2st'):.3f} "
            f"| {s['cmpe']:.3f} | {s['npe_maf']:.3f} | {s['fmpe']:.2f} "
            f"| {s['cmpe'] / s['npe_maf']:.2f} | {s['fmpe'] / s['cmpe']:.0f} "
            f"| {tr['cmpe']:.0f} | {tr['npe_nsf']:.0f} | {tr['fmpe']:.0f} "
            f"| {tr['cmpe'] / tr['npe_nsf']:.2f} | {tr['cmpe'] / tr['fmpe']:.1f} |"
        )


if __name__ == "__main__":
    main()
