"""Mean C2ST over observations 6-8 per (task, budget, seed, method, loss, sampling steps, run) of
results.csv, with the training seconds: python summary.py > summary.txt"""

import csv
from collections import defaultdict
from pathlib import Path

groups = defaultdict(list)
for r in csv.DictReader(open(Path(__file__).with_name("results.csv"))):
    key = (r["task"], int(r["budget"]), r["seed"], r["method"])
    key += (r["loss"], r["num_steps"], r["run"])
    groups[key].append((float(r["c2st"]), float(r["train_time_s"]), r["note"]))
print("task budget seed method loss steps run | C2ST (mean of 3 observations) | train s | note")
for key in sorted(groups):
    c2st = [c for c, _, _ in groups[key]]
    print(*key, f"| {sum(c2st) / len(c2st):.4f} | {groups[key][0][1]:.1f} | {groups[key][0][2]}")
