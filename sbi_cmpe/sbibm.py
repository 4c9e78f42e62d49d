"""CMPE as an sbibm algorithm: `run(task, num_samples, num_simulations, ...)`.

sbibm compares inference algorithms through one signature; this module gives CMPE that
signature, so that a study can put it beside sbibm's own algorithms:

    import sbibm
    from sbi_cmpe.sbibm import run as cmpe

    task = sbibm.get_task("two_moons")
    samples, num_simulations, _ = cmpe(task, num_samples=10_000, num_simulations=10_000,
                                       num_observation=1)
    sbibm.metrics.c2st(samples, task.get_reference_posterior_samples(num_observation=1))
"""

from __future__ import annotations

import inspect
import logging
from typing import Any, Optional, Tuple

from sbi.inference import simulate_for_sbi
from torch import Tensor
from torch.distributions.transformed_distribution import TransformedDistribution

from sbi_cmpe.inference import CMPEInference

__all__ = ["run"]

_TRAINER_KEYS = set(inspect.signature(CMPEInference.__init__).parameters) - {"self", "prior"}
_TRAIN_KEYS = set(inspect.signature(CMPEInference.train).parameters) - {"self"}


def run(
    task: Any,
    num_samples: int,
    num_simulations: int,
    num_observation: Optional[int] = None,
    observation: Optional[Tensor] = None,
    simulation_batch_size: int = 1000,
    automatic_transforms_enabled: bool = False,
    num_steps: Optional[int] = None,
    **kwargs: Any,
) -> Tuple[Tensor, int, Optional[Tensor]]:
    """Run CMPE on an sbibm task, with sbibm's algorithm signature and conventions.

    Simulates `num_simulations` parameters from the task's prior through its simulator
    (which counts the calls), trains `CMPEInference` on them and draws `num_samples`
    samples from the posterior at the observation.

    Arguments:
        task: An sbibm task (`sbibm.get_task(name)`).
        num_samples: Number of posterior samples to return.
        num_simulations: Simulation budget.
        num_observation: Number of the task's observation (1-based), or
        observation: the observation itself, of shape `(1, *x_shape)`; give exactly one.
        simulation_batch_size: Parameters simulated per simulator call.
        automatic_transforms_enabled: Train in the task's unconstrained parameter space
            (sbibm's bijections), returning samples mapped back to the parameter space.
        num_steps: Sampling steps; `None` for the posterior's default.
        **kwargs: Keywords of `CMPEInference` (e.g. `density_estimator`, `device`) and of
            `CMPEInference.train` (e.g. `max_num_epochs`, `training_batch_size`).

    Returns:
        Samples `(num_samples, D)` in the task's parameter space, the number of simulator
        calls, and the log probability of the true parameters when `num_observation` is
        given and the estimator has a density (`consistency_nn(density=True)`), else `None`.
    """
    if (num_observation is None) == (observation is None):
        raise ValueError("Give exactly one of num_observation and observation.")
    unknown = sorted(set(kwargs) - _TRAINER_KEYS - _TRAIN_KEYS)
    if unknown:
        raise TypeError(
            f"Unknown keyword arguments {unknown}: run takes those of CMPEInference and of "
            "CMPEInference.train."
        )
    log = logging.getLogger(__name__)
    log.info("Running CMPE")
    trainer_kwargs = {k: v for k, v in kwargs.items() if k in _TRAINER_KEYS}
    train_kwargs = {k: v for k, v in kwargs.items() if k in _TRAIN_KEYS}
    trainer_kwargs.setdefault("show_progress_bars", False)

    prior = task.get_prior_dist()
    if observation is None:
        observation = task.get_observation(num_observation)
    simulator = task.get_simulator(max_calls=num_simulations)
    transform = task._get_transforms(automatic_transforms_enabled)["parameters"]
    if automatic_transforms_enabled:
        prior = TransformedDistribution(prior, transform)
        simulate = lambda theta: simulator(transform.inv(theta))  # noqa: E731
    else:
        simulate = simulator

    theta, x = simulate_for_sbi(
        simulate,
        prior,
        num_simulations=num_simulations,
        simulation_batch_size=min(simulation_batch_size, num_simulations),
        show_progress_bar=False,
    )
    inference = CMPEInference(prior, **trainer_kwargs)
    inference.append_simulations(theta, x).train(**train_kwargs)
    posterior = inference.build_posterior(num_steps=num_steps)
    samples = posterior.sample((num_samples,), x=observation, show_progress_bars=False)
    if automatic_transforms_enabled:
        samples = transform.inv(samples)
    if simulator.num_simulations != num_simulations:  # sbibm's simulators count their calls
        raise RuntimeError(
            f"The simulator ran {simulator.num_simulations} times for a budget of "
            f"{num_simulations}."
        )
    log_prob_true = None
    if num_observation is not None and posterior.has_density:
        true_parameters = task.get_true_parameters(num_observation=num_observation)
        if automatic_transforms_enabled:  # change of variables to the parameter space
            unconstrained = transform(true_parameters)
            log_prob_true = posterior.log_prob(unconstrained, x=observation).detach()
            log_prob_true += transform.log_abs_det_jacobian(true_parameters, unconstrained)
        else:
            log_prob_true = posterior.log_prob(true_parameters, x=observation).detach()
    return samples.detach(), simulator.num_simulations, log_prob_true
