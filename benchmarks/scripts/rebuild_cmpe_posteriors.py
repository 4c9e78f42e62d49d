"""Rebuild the cached CMPE posteriors of a benchmark folder with today's `build_posterior`.

The sampling defaults (draws per network call) are a property of the posterior, not of the
trained network: this keeps each cached network and its training record and replaces its
posterior by the one `CMPEInference.build_posterior()` now returns for that network (same
estimator, prior and number of steps). Run from the repository root:

    python benchmarks/scripts/rebuild_cmpe_posteriors.py benchmarks/results
"""

import sys
from dataclasses import replace
from pathlib import Path

import torch

from sbi_cmpe import ConsistencyPosterior
from sbi_cmpe.benchmark.cache import cached_posteriors

for cached in cached_posteriors(Path(sys.argv[1], "cache")):
    if cached.method != "cmpe":
        continue
    trained = torch.load(cached.path, weights_only=False)
    old = trained.posterior
    new = ConsistencyPosterior(old.estimator, old.prior, num_steps=old.num_steps)
    torch.save(replace(trained, posterior=new), cached.path)
    print(cached.path.name, old.max_sampling_batch_size, "->", new.max_sampling_batch_size)
