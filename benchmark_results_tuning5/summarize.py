"""Mean C2ST per (task, budget, method) and seed of a sweep's JSON lines, with training seconds.

Usage: python benchmark_results_tuning5/summarize.py <sweep.jsonl>
"""

import json
import sys
from collections import defaultdict

scores = defaultdict(lambda: defaultdict(list))  # (task, budget, method) -> seed -> C2ST list
seconds = {}
for line in open(sys.argv[1]):
    row = json.loads(line)
    if "c2st" not in row:
        print("failed:", row)
        continue
    scores[row["task"], row["budget"], row["method"]][row["seed"]].append(float(row["c2st"]))
    seconds[row["task"], row["budget"], row["method"], row["seed"]] = row["train_time_s"]
for key, per_seed in sorted(scores.items()):
    parts = [
        f"seed{seed} {sum(v) / len(v):.3f} ({seconds[key + (seed,)]} s)"
        for seed, v in sorted(per_seed.items())
    ]
    every = [s for v in per_seed.values() for s in v]
    print(key, *parts, f"mean {sum(every) / len(every):.3f}")
