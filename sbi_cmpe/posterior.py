"""`ConsistencyPosterior`: sbi's posterior interface over a consistency estimator."""

from __future__ import annotations

from functools import partial
from typing import Literal, Optional, Union

import torch
from sbi.inference.posteriors.base_posterior import NeuralPosterior
from sbi.inference.potentials.base_potential import BasePotential
from sbi.inference.potentials.posterior_based_potential import (
    posterior_estimator_based_potential,
)
from sbi.neural_nets.estimators.shape_handling import reshape_to_batch_event
from sbi.sbi_types import Shape
from sbi.utils.sbiutils import warn_if_outside_prior_support, within_support
from sbi.utils.torchutils import process_device
from sbi.utils.user_input_checks import check_prior
from torch import Tensor
from torch.distributions import Distribution

from sbi_cmpe import arguments
from sbi_cmpe.estimator import ConsistencyEstimator
from sbi_cmpe.posterior_density import DensityMethods, no_density_message, unbounded
from sbi_cmpe.rejection import reject_outside

__all__ = ["ConsistencyPosterior", "default_sampling_batch_size"]

# Acceptance rate of prior-support rejection below which `sample` warns.
LOW_ACCEPTANCE = 0.01
# Default draws per network call on a CPU, where the activations of a 128-wide network then
# stay in the processor's cache, and on other devices, where large calls pay
# (`benchmarks/TUNING.md#sampling-speed`).
CPU_SAMPLING_BATCH_SIZE = 2_048
SAMPLING_BATCH_SIZE = 10_000


def default_sampling_batch_size(device: Union[str, torch.device]) -> int:
    """Draws per network call when `max_sampling_batch_size` is not given: 2,048 on a CPU
    (`CPU_SAMPLING_BATCH_SIZE`), 10,000 on other devices (`SAMPLING_BATCH_SIZE`)."""
    is_cpu = torch.device(device).type == "cpu"
    return CPU_SAMPLING_BATCH_SIZE if is_cpu else SAMPLING_BATCH_SIZE


class _SamplingOnlyPotential(BasePotential):
    """Potential of a posterior without a density: it knows the prior, nothing else."""

    def __call__(self, theta: Tensor, track_gradients: bool = True) -> Tensor:
        raise NotImplementedError(no_density_message("the potential (log_prob)"))


class ConsistencyPosterior(DensityMethods, NeuralPosterior):
    r"""Posterior $p(\theta \mid x)$ sampled by a consistency model.

    Sampling takes `num_steps` network evaluations per draw (one batched call per
    step). Draws outside the prior's support are rejected, as in sbi's
    `DirectPosterior`; for a prior with unbounded support no rejection loop runs.
    Densities (`log_prob`, `potential`, `map`) need an estimator with a denoiser head
    (`consistency_nn(density=True)`); without one they raise an error that says so.

    The positional arguments are those of sbi's `DirectPosterior`; `num_steps` is given by
    keyword.

    Arguments:
        estimator: A trained `ConsistencyEstimator`.
        prior: The prior, used for its support.
        max_sampling_batch_size: Largest number of draws made in one network call; `None`
            for 2,048 on a CPU and 10,000 on other devices (`default_sampling_batch_size`).
        device: Device for sampling; `None` keeps the estimator's.
        num_steps: Default number of sampling steps; `"auto"` (or `None`) uses the
            estimator's, which training chose on held-out simulations
            (`sbi_cmpe.steps`) unless the estimator was built with a number.

    Example:
        >>> posterior = inference.build_posterior()  # doctest: +SKIP
        >>> posterior.sample((1000,), x=x_o, num_steps=3)  # doctest: +SKIP
    """

    def __init__(
        self,
        estimator: ConsistencyEstimator,
        prior: Distribution,
        max_sampling_batch_size: Optional[int] = None,
        device: Optional[Union[str, torch.device]] = None,
        *,
        num_steps: Union[int, Literal["auto"], None] = "auto",
    ) -> None:
        check_prior(prior)
        if device is None:
            device = next(estimator.parameters()).device
        device = process_device(device)
        estimator = estimator.to(device).eval()
        if estimator.density:
            potential_fn, transform = posterior_estimator_based_potential(estimator, prior, None)
        else:
            potential_fn, transform = _SamplingOnlyPotential(prior, None, device=device), None
        super().__init__(potential_fn, theta_transform=transform, device=device)
        self.prior = prior
        self.estimator = estimator
        num_steps = arguments.steps_or_auto("num_steps", num_steps, allow_none=True)
        auto = num_steps is None or num_steps == "auto"
        self.num_steps = estimator.num_steps if auto else num_steps
        estimator.schedule.sampling_times(self.num_steps)  # validates
        # The choice that set the default, for repr (`None`: a number was given).
        self._step_choice = estimator.step_choice if auto else None
        self.max_sampling_batch_size = arguments.positive_int(
            "max_sampling_batch_size", max_sampling_batch_size, allow_none=True
        )
        self._purpose = f"It samples a consistency model in {self.num_steps} step(s)" + (
            " and has a density by its probability-flow ODE." if estimator.density else "."
        )
        self._leakage: dict = {}

    @property
    def posterior_estimator(self) -> ConsistencyEstimator:
        """The consistency estimator (named as in sbi's `DirectPosterior`)."""
        return self.estimator

    def to(self, device: Union[str, torch.device]) -> ConsistencyPosterior:
        """Move the estimator, the prior (where it can move) and the default x."""
        device = process_device(device)
        self._device = device
        self.estimator.to(device)
        if hasattr(self.prior, "to"):
            self.prior.to(device)
        self.potential_fn.device = device
        if self.estimator.density:  # the transform holds the prior's bounds
            self.potential_fn, self.theta_transform = posterior_estimator_based_potential(
                self.estimator, self.prior, None
            )
        if self._x is not None:
            self._x = self._x.to(device)
        self._leakage = {}
        self._map = None  # found on the old device
        return self

    def _checked_x(self, x: Tensor) -> Tensor:
        shape = self.estimator.condition_shape
        x = arguments.float_tensor("x", x)
        if x.dim() == 0 and shape.numel() == 1:  # a scalar for a one-entry x
            x = x.reshape(shape)
        try:
            x = reshape_to_batch_event(x, event_shape=shape)
        except (ValueError, RuntimeError) as err:
            raise ValueError(
                f"x of shape {tuple(x.shape)} does not match the shape of the training "
                f"x, {tuple(shape)} per simulation."
            ) from err
        if tuple(x.shape[1:]) != tuple(shape):
            raise ValueError(
                f"x of shape {tuple(x.shape)} does not match the shape of the training "
                f"x, {tuple(shape)} per simulation."
            )
        if x.shape[0] == 0:
            raise ValueError(f"x holds no observation (shape {tuple(x.shape)}).")
        if not torch.isfinite(x).all():
            raise ValueError("x contains NaN or infinite values.")
        return x.to(self._estimator_device())

    def _one_x(self, x: Optional[Tensor], method: str) -> Tensor:
        """`x`, or the default x, checked to be one observation for `method`."""
        if x is None and self.default_x is None:
            raise ValueError(
                "No x given and no default x set: pass `x=...` or call "
                "`posterior.set_default_x(x_o)` first."
            )
        x = self._checked_x(self.default_x if x is None else x)
        if x.shape[0] > 1:
            raise ValueError(
                f"`.{method}()` takes one observation, got a batch of {x.shape[0]}. Use "
                f"`.{method}_batched()` where it exists for several observations, or an "
                "embedding net that is permutation invariant for i.i.d. trials."
            )
        return x

    def set_default_x(self, x: Tensor) -> ConsistencyPosterior:
        """Set the observation that `sample` (and sbi's tools) use when given no `x`.

        Arguments:
            x: One observation, of the shape of one training simulation (a leading batch
                dimension of 1 is allowed).

        Returns:
            The posterior itself.
        """
        x = self._checked_x(x)
        if x.shape[0] != 1:
            raise ValueError(f"set_default_x takes one observation, got a batch of {x.shape[0]}.")
        self._x = x.to(self._device)
        self._map = None
        return self

    def _estimator_device(self) -> torch.device:
        """Where the estimator's weights are (also after `torch.load(map_location=...)`)."""
        return next(self.estimator.parameters()).device

    def __setstate__(self, state_dict: dict) -> None:
        """Restore a pickled posterior; its device is wherever the weights were loaded."""
        self.__dict__ = state_dict
        self.__dict__.setdefault("_leakage", {})  # posteriors of 0.2 have no density
        device = self._estimator_device()
        self._device = device
        self.potential_fn.device = device
        if self._x is not None:
            self._x = self._x.to(device)

    def _draws(
        self, sample_shape: torch.Size, condition: Tensor, num_steps: int, chunk: int
    ) -> Tensor:
        """Draws `(n, B, *theta_shape)` in chunks of at most `chunk` network inputs."""
        n, batch = torch.Size(sample_shape).numel(), condition.shape[0]
        per_call = max(1, chunk // batch)
        parts = [
            self.estimator.sample((min(per_call, n - i),), condition, num_steps)
            for i in range(0, n, per_call)
        ]
        return (
            torch.cat(parts, dim=0) if parts else self.estimator.sample((0,), condition, num_steps)
        )

    def _sample(
        self,
        sample_shape: torch.Size,
        x: Tensor,
        num_steps: Union[int, Literal["auto"], None],
        max_sampling_batch_size: Optional[int],
        show_progress_bars: bool,
        reject_outside_prior: bool,
        max_sampling_time: Optional[float],
        return_partial_on_timeout: bool,
    ) -> Tensor:
        """Draws of shape `(*sample_shape, B, *theta_shape)`; `(n, B, *theta_shape)` with
        `n` below the requested number when `max_sampling_time` cut rejection short."""
        num_samples = sample_shape.numel()
        if num_steps is None or isinstance(num_steps, str):  # None or "auto": the default
            arguments.steps_or_auto("num_steps", num_steps, allow_none=True)
            num_steps = self.num_steps
        self.estimator.schedule.sampling_times(num_steps)  # validates
        chunk = self.max_sampling_batch_size
        if max_sampling_batch_size is not None:
            chunk = arguments.positive_int("max_sampling_batch_size", max_sampling_batch_size)
        arguments.positive_float("max_sampling_time", max_sampling_time, allow_none=True)
        if chunk is None:
            chunk = default_sampling_batch_size(self._estimator_device())
        self.estimator.eval()
        if num_samples == 0:
            return x.new_zeros(*sample_shape, x.shape[0], *self.estimator.input_shape)
        draw = partial(self._draws, num_steps=num_steps, chunk=chunk)
        theta_shape = self.estimator.input_shape
        if reject_outside_prior and not unbounded(self.prior):
            samples, _ = reject_outside(
                propose=lambda k, x_block: draw(torch.Size((k,)), x_block).flatten(2),
                accept=lambda theta: within_support(self.prior, theta.reshape(-1, *theta_shape)),
                num_samples=num_samples,
                condition=x,
                chunk=chunk,
                max_sampling_time=max_sampling_time,
                return_partial_on_timeout=return_partial_on_timeout,
                show_progress_bars=show_progress_bars,
                warn_acceptance=LOW_ACCEPTANCE,
            )
            samples = samples.reshape(len(samples), x.shape[0], *theta_shape)
        else:
            samples = draw(torch.Size((num_samples,)), x)
            if not reject_outside_prior:
                warn_if_outside_prior_support(self.prior, samples)
        if samples.shape[0] < num_samples:  # partial, after `max_sampling_time`
            return samples
        return samples.reshape(*sample_shape, x.shape[0], *self.estimator.input_shape)

    def sample(
        self,
        sample_shape: Shape = (),
        x: Optional[Tensor] = None,
        max_sampling_batch_size: Optional[int] = None,
        show_progress_bars: bool = True,
        reject_outside_prior: bool = True,
        max_sampling_time: Optional[float] = None,
        return_partial_on_timeout: bool = False,
        *,
        num_steps: Union[int, Literal["auto"], None] = None,
    ) -> Tensor:
        r"""Draw samples from $p(\theta \mid x)$ for one observation.

        Arguments:
            sample_shape: Shape of the samples.
            x: One observation; `None` uses the default x (`set_default_x`).
            max_sampling_batch_size: Largest number of draws per network call; `None`
                uses the posterior's.
            show_progress_bars: Whether to show a progress bar while rejecting.
            reject_outside_prior: Whether to reject draws outside the prior support.
            max_sampling_time: Time limit (s) for rejection sampling, as in sbi.
            return_partial_on_timeout: Return what was drawn when the time is up.
            num_steps: Number of sampling steps (network calls per draw), by keyword;
                `None` or `"auto"` uses the posterior's default.

        Returns:
            Samples of shape `(*sample_shape, *theta_shape)`.
        """
        sample_shape = arguments.sample_shape(sample_shape)
        x = self._one_x(x, "sample")
        samples = self._sample(
            sample_shape,
            x,
            num_steps,
            max_sampling_batch_size,
            show_progress_bars,
            reject_outside_prior,
            max_sampling_time,
            return_partial_on_timeout,
        )
        return samples.select(-1 - len(self.estimator.input_shape), 0)  # drop the x batch

    def sample_batched(
        self,
        sample_shape: Shape,
        x: Tensor,
        max_sampling_batch_size: Optional[int] = None,
        show_progress_bars: bool = True,
        reject_outside_prior: bool = True,
        max_sampling_time: Optional[float] = None,
        return_partial_on_timeout: bool = False,
        *,
        num_steps: Union[int, Literal["auto"], None] = None,
    ) -> Tensor:
        r"""Draw samples from $p(\theta \mid x_b)$ for each of a batch of observations.

        Arguments:
            sample_shape: Shape of the samples for each observation.
            x: Observations of shape `(B, *x_shape)`.
            max_sampling_batch_size: Largest number of draws per network call, summed
                over the observations; `None` uses the posterior's.
            show_progress_bars: Whether to show a progress bar while rejecting.
            reject_outside_prior: Whether to reject draws outside the prior support.
            max_sampling_time: Time limit (s) for rejection sampling, as in sbi.
            return_partial_on_timeout: Return what was drawn when the time is up.
            num_steps: Number of sampling steps, by keyword; `None` or `"auto"` uses the
                posterior's default.

        Returns:
            Samples of shape `(*sample_shape, B, *theta_shape)`.
        """
        sample_shape = arguments.sample_shape(sample_shape)
        x = self._checked_x(x)
        return self._sample(
            sample_shape,
            x,
            num_steps,
            max_sampling_batch_size,
            show_progress_bars,
            reject_outside_prior,
            max_sampling_time,
            return_partial_on_timeout,
        )

    def _steps_text(self) -> str:
        """The default steps, with how training chose them where it did."""
        choice = getattr(self, "_step_choice", None)  # absent in pickles of 0.2
        if choice is not None and choice.num_steps == self.num_steps:
            return choice.describe()
        return str(self.num_steps)

    def __repr__(self) -> str:
        e = self.estimator
        params = sum(p.numel() for p in e.parameters())
        default_x = "none" if self.default_x is None else f"shape {tuple(self.default_x.shape)}"
        return (
            f"ConsistencyPosterior(theta_shape={tuple(e.input_shape)}, "
            f"x_shape={tuple(e.condition_shape)}, num_steps={self._steps_text()}, "
            f"eps={e.schedule.eps:g}, T={e.schedule.T:g}, density={e.density}, "
            f"parameters={params:,}, "
            f"prior={type(self.prior).__name__}, "
            f"device={self._device}, default_x={default_x})"
        )
