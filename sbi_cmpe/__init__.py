"""Consistency model posterior estimation (CMPE) for sbi.

Importing the package registers `CMPE` in `sbi.inference`, so that
`sbi.inference.infer(simulator, prior, method="cmpe", num_simulations=N)` works.
"""

import sbi.inference

from sbi_cmpe.consistency import (
    consistency_loss,
    karras_grid,
    num_discretization_steps,
    pseudo_huber,
    sampling_times,
    scalings,
    timestep_probabilities,
)
from sbi_cmpe.estimator import ConsistencyEstimator
from sbi_cmpe.factory import consistency_nn
from sbi_cmpe.inference import CMPEInference
from sbi_cmpe.posterior import ConsistencyPosterior
from sbi_cmpe.schedule import NoiseSchedule

__version__ = "0.3.0.dev0"

__all__ = [
    "CMPEInference",
    "ConsistencyEstimator",
    "ConsistencyPosterior",
    "NoiseSchedule",
    "consistency_nn",
    "consistency_loss",
    "karras_grid",
    "num_discretization_steps",
    "pseudo_huber",
    "sampling_times",
    "scalings",
    "timestep_probabilities",
]

sbi.inference.CMPE = CMPEInference
