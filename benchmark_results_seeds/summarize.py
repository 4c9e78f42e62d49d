"""Mean C2ST per seed and over seeds for the pairs in benchmark_results_seeds (with seed 0 from
benchmark_results); run from the repository root: python benchmark_results_seeds/summarize.py."""

import collections
import csv
import glob

rows = []
for f in ["benchmark_results/results.csv"] + sorted(
    glob.glob("benchmark_results_seeds/seed*/results.csv")
):
    rows += [
        r
        for r in csv.DictReader(open(f))
        if r["num_steps"] == "default" and r["method"] in ("cmpe", "npe_nsf", "fmpe")
    ]
cells = {(r["task"], r["budget"]) for r in rows if r["seed"] != "0"}
d = collections.defaultdict(list)
for r in rows:
    if (r["task"], r["budget"]) in cells:
        d[(r["task"], int(r["budget"]), r["method"], r["seed"])].append(float(r["c2st"]))
for task, budget in sorted(cells):
    seeds = sorted({k[3] for k in d if k[:2] == (task, int(budget))})
    line = []
    for m in ("cmpe", "npe_nsf", "fmpe"):
        per = [
            sum(d[(task, int(budget), m, s)]) / len(d[(task, int(budget), m, s)])
            for s in seeds
            if d[(task, int(budget), m, s)]
        ]
        allv = [v for s in seeds for v in d[(task, int(budget), m, s)]]
        line.append(
            f"{m} "
            + "/".join(f"{p:.3f}" for p in per)
            + (f" mean {sum(allv) / len(allv):.3f} (n={len(allv)})" if allv else "")
        )
    print(task, budget, "seeds", seeds, " | ".join(line))
