"""Sampling-step sweep on cached tuning posteriors: mean C2ST over observations 6-8.

Usage: python benchmarks/scripts/stepsweep.py <posterior_*.pt> ... (reads .tune/bundle.pt, made by
`make_bundle.py`; prints one JSON line per posterior and number of steps)
"""

import json
import sys
import warnings
from pathlib import Path

import torch
from sbi.utils.metrics import c2st

from sbi_cmpe.benchmark.cache import cached_posteriors

warnings.simplefilter("ignore")
torch.set_num_threads(1)
bundle = torch.load(".tune/bundle.pt")
for path in sys.argv[1:]:
    trained = torch.load(path, weights_only=False)
    name = next(c.task for c in cached_posteriors(Path(path).parent) if c.path == Path(path))
    for k in [2, 3, 4, 5, 8]:
        scores = []
        for obs in [6, 7, 8]:
            torch.manual_seed(0)
            x_o = bundle[name]["obs"][obs]
            draws = trained.posterior.sample(
                (10000,), x=x_o, num_steps=k, show_progress_bars=False
            )
            reference = bundle[name]["ref"][obs][:10000]
            scores.append(c2st(draws, reference, classifier_kwargs={"n_jobs": 1}).item())
        row = dict(
            path=Path(path).name,
            steps=k,
            c2st=round(sum(scores) / 3, 4),
            per_obs=[round(s, 3) for s in scores],
        )
        print(json.dumps(row), flush=True)
