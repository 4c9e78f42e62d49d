"""Priors, observations, reference samples and seed-1 simulations of five sbibm tasks -> .tune/.

The input of `sweep.py`, `stepsweep.py` and `gpu.py` (also on a machine without sbibm's
data). Run from the repository root: `python benchmarks/scripts/make_bundle.py`. Simulations
of other seeds go to `.tune/sims/` the same way, e.g.
`sbi_cmpe.benchmark.cache.simulations(load_task(name), 1000, 2, Path(".tune/sims"))`.
"""

import warnings
from pathlib import Path

import torch

from sbi_cmpe.benchmark.cache import simulations
from sbi_cmpe.benchmark.tasks import load_task

warnings.simplefilter("ignore")
out = Path(".tune")
(out / "sims").mkdir(parents=True, exist_ok=True)
bundle = {}
for name in ["two_moons", "gaussian_linear", "gaussian_mixture", "slcp", "bernoulli_glm"]:
    task = load_task(name)
    p = task.prior
    base = getattr(p, "base_dist", p)
    tn = type(base).__name__
    if "Uniform" in tn:
        prior = ("box", base.low.clone(), base.high.clone())
    else:
        prior = ("mvn", base.loc.clone(), base.scale_tril.clone())
    print(name, type(p).__name__, tn, [t.shape for t in prior[1:]])
    obs = {i: task.observation(i) for i in range(1, 11)}
    ref = {i: task.reference_samples(i, 10000) for i in (6, 7, 8)}
    bundle[name] = dict(prior=prior, obs=obs, ref=ref)
    for b in (1000, 10000):
        th, x = simulations(task, b, 1, out / "sims")
        print(" ", b, th.shape, x.shape)
torch.save(bundle, out / "bundle.pt")
