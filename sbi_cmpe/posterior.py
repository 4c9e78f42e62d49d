"""`ConsistencyPosterior`: sbi's posterior interface over a consistency estimator."""

from __future__ import annotations

import math
import warnings
from functools import partial
from typing import Any, Optional, Union

import torch
from sbi.inference.posteriors.base_posterior import NeuralPosterior
from sbi.inference.potentials.base_potential import BasePotential
from sbi.inference.potentials.posterior_based_potential import (
    posterior_estimator_based_potential,
)
from sbi.neural_nets.estimators.shape_handling import reshape_to_batch_event
from sbi.samplers.rejection import rejection
from sbi.sbi_types import Shape
from sbi.utils.sbiutils import ImproperEmpirical, warn_if_outside_prior_support, within_support
from sbi.utils.torchutils import process_device
from sbi.utils.user_input_checks import check_prior
from torch import Tensor
from torch.distributions import Distribution, constraints

from sbi_cmpe import arguments
from sbi_cmpe.density import ode_sample
from sbi_cmpe.estimator import ConsistencyEstimator

__all__ = ["ConsistencyPosterior", "default_sampling_batch_size"]

_NO_DENSITY = (
    "This consistency model gives samples, not densities: {what} is not available. Train "
    "it with a density head, `CMPEInference(prior, density_estimator=consistency_nn("
    "density=True))` (estimators of sbi-cmpe 0.2 and earlier have none), or use `.sample()`."
)


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
        raise NotImplementedError(_NO_DENSITY.format(what="the potential (log_prob)"))


def _unbounded(prior: Any) -> bool:
    """Whether the prior's support is all of R^D (no rejection needed)."""
    if isinstance(prior, ImproperEmpirical):  # sbi's stand-in when there is no prior
        return True
    try:
        support = prior.support
    except (NotImplementedError, AttributeError):
        return False
    while isinstance(support, constraints.independent):
        support = support.base_constraint
    return support is constraints.real


class ConsistencyPosterior(NeuralPosterior):
    r"""Posterior $p(\theta \mid x)$ sampled by a consistency model.

    Sampling takes `num_steps` network evaluations per draw (one batched call per
    step). Draws outside the prior's support are rejected, as in sbi's
    `DirectPosterior`; for a prior with unbounded support no rejection loop runs.
    Densities (`log_prob`, `potential`, `map`) are not available: they raise an error
    that says what to use instead.

    Arguments:
        estimator: A trained `ConsistencyEstimator`.
        prior: The prior, used for its support.
        num_steps: Default number of sampling steps; `None` uses the estimator's.
        max_sampling_batch_size: Largest number of draws made in one network call; `None`
            for 2,048 on a CPU and 10,000 on other devices (`default_sampling_batch_size`).
        device: Device for sampling; `None` keeps the estimator's.

    Example:
        >>> posterior = inference.build_posterior()  # doctest: +SKIP
        >>> posterior.sample((1000,), x=x_o, num_steps=3)  # doctest: +SKIP
    """

    def __init__(
        self,
        estimator: ConsistencyEstimator,
        prior: Distribution,
        num_steps: Optional[int] = None,
        max_sampling_batch_size: Optional[int] = None,
        device: Optional[Union[str, torch.device]] = None,
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
        self.num_steps = estimator.num_steps if num_steps is None else num_steps
        estimator.schedule.sampling_times(self.num_steps)  # validates
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
        return self

    def _checked_x(self, x: Tensor) -> Tensor:
        shape = self.estimator.condition_shape
        try:
            x = torch.as_tensor(x, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(
                f"x must be a tensor, numpy array or nested list of numbers, got "
                f"{type(x).__name__}."
            ) from err
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
        num_steps: Optional[int],
        max_sampling_batch_size: Optional[int],
        show_progress_bars: bool,
        reject_outside_prior: bool,
        max_sampling_time: Optional[float],
        return_partial_on_timeout: bool,
    ) -> Tensor:
        """Draws of shape `(*sample_shape, B, *theta_shape)`; `(n, B, *theta_shape)` with
        `n` below the requested number when `max_sampling_time` cut rejection short."""
        num_samples = sample_shape.numel()
        num_steps = self.num_steps if num_steps is None else num_steps
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
        if reject_outside_prior and not _unbounded(self.prior):
            samples, rates = rejection.accept_reject_sample(
                proposal=draw,
                accept_reject_fn=lambda theta: within_support(self.prior, theta),
                num_samples=num_samples,
                show_progress_bars=show_progress_bars,
                max_sampling_batch_size=max(1, chunk // x.shape[0]),
                proposal_sampling_kwargs={"condition": x},
                max_sampling_time=max_sampling_time,
                return_partial_on_timeout=return_partial_on_timeout,
            )
            if float(rates.min()) < LOW_ACCEPTANCE:
                warnings.warn(
                    f"Only {float(rates.min()):.2%} of the draws fell inside the prior's "
                    "support (for the worst x), so sampling was slow. The estimator may be "
                    "poorly trained for this x, or x may be unlike the simulations; "
                    "`max_sampling_time` bounds the time and `reject_outside_prior=False` "
                    "skips the rejection.",
                    stacklevel=3,
                )
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
        num_steps: Optional[int] = None,
        max_sampling_batch_size: Optional[int] = None,
        show_progress_bars: bool = True,
        reject_outside_prior: bool = True,
        max_sampling_time: Optional[float] = None,
        return_partial_on_timeout: bool = False,
    ) -> Tensor:
        r"""Draw samples from $p(\theta \mid x)$ for one observation.

        Arguments:
            sample_shape: Shape of the samples.
            x: One observation; `None` uses the default x (`set_default_x`).
            num_steps: Number of sampling steps (network calls per draw); `None` uses
                the posterior's default.
            max_sampling_batch_size: Largest number of draws per network call; `None`
                uses the posterior's.
            show_progress_bars: Whether to show a progress bar while rejecting.
            reject_outside_prior: Whether to reject draws outside the prior support.
            max_sampling_time: Time limit (s) for rejection sampling, as in sbi.
            return_partial_on_timeout: Return what was drawn when the time is up.

        Returns:
            Samples of shape `(*sample_shape, *theta_shape)`.
        """
        sample_shape = arguments.sample_shape(sample_shape)
        if x is None and self.default_x is None:
            raise ValueError(
                "No x given and no default x set: pass `x=...` or call "
                "`posterior.set_default_x(x_o)` first."
            )
        x = self._checked_x(self.default_x if x is None else x)
        if x.shape[0] > 1:
            raise ValueError(
                f"`.sample()` takes one observation, got a batch of {x.shape[0]}. Use "
                "`.sample_batched()` for several observations, or an embedding net that "
                "is permutation invariant for i.i.d. trials."
            )
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
        num_steps: Optional[int] = None,
        max_sampling_batch_size: Optional[int] = None,
        show_progress_bars: bool = True,
        reject_outside_prior: bool = True,
        max_sampling_time: Optional[float] = None,
        return_partial_on_timeout: bool = False,
    ) -> Tensor:
        r"""Draw samples from $p(\theta \mid x_b)$ for each of a batch of observations.

        Arguments:
            sample_shape: Shape of the samples for each observation.
            x: Observations of shape `(B, *x_shape)`.
            num_steps: Number of sampling steps; `None` uses the posterior's default.
            max_sampling_batch_size: Largest number of draws per network call, summed
                over the observations; `None` uses the posterior's.
            show_progress_bars: Whether to show a progress bar while rejecting.
            reject_outside_prior: Whether to reject draws outside the prior support.
            max_sampling_time: Time limit (s) for rejection sampling, as in sbi.
            return_partial_on_timeout: Return what was drawn when the time is up.

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

    @property
    def has_density(self) -> bool:
        """Whether the estimator has a denoiser head, and so `log_prob`, `potential`, `map`."""
        return self.estimator.density

    def _require_density(self, what: str) -> None:
        if not self.estimator.density:
            raise NotImplementedError(_NO_DENSITY.format(what=what))

    def _checked_theta(self, theta: Tensor) -> Tensor:
        shape = self.estimator.input_shape
        try:
            theta = torch.as_tensor(theta, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(
                f"theta must be a tensor, numpy array or nested list of numbers, got "
                f"{type(theta).__name__}."
            ) from err
        if theta.dim() < len(shape) or theta.shape[theta.dim() - len(shape) :] != shape:
            raise ValueError(
                f"theta of shape {tuple(theta.shape)} does not end in the parameter shape "
                f"{tuple(shape)}."
            )
        if not torch.isfinite(theta).all():
            raise ValueError("theta contains NaN or infinite values.")
        return theta.to(self._estimator_device())

    def log_prob(
        self,
        theta: Tensor,
        x: Optional[Tensor] = None,
        norm_posterior: bool = True,
        track_gradients: bool = False,
        leakage_correction_params: Optional[dict] = None,
        **ode_kwargs: Any,
    ) -> Tensor:
        r"""$\log q(\theta \mid x)$, by the probability-flow ODE of the denoiser head.

        The density is that of the probability-flow ODE of the denoiser head
        (`sbi_cmpe.density`). The few-step consistency sampler of `sample` approximates the
        same posterior but is a different model: weights that divide by this density (e.g.
        sbi's importance sampling with this posterior as proposal) are exact only for draws
        of `sample_ode`. It is $-\infty$ outside the prior's support and, with
        `norm_posterior`, divided by the fraction of the density's mass inside the support
        (as sbi's `DirectPosterior`).

        Arguments:
            theta: Parameters of shape `(N, *theta_shape)` (or one set).
            x: One observation; `None` uses the default x.
            norm_posterior: Whether to correct for mass outside the prior's support.
            track_gradients: Whether the result carries gradients (for `map`).
            leakage_correction_params: Keywords of `leakage_correction`.
            **ode_kwargs: `exact`, `atol`, `rtol` of `sbi_cmpe.density.ode_log_prob`.

        Returns:
            Log densities of shape `(N,)`.
        """
        self._require_density("`log_prob`")
        x = self._one_x(x)
        theta = self._checked_theta(theta).reshape(-1, *self.estimator.input_shape)
        if len(theta) == 0:
            return theta.new_zeros(0)
        with torch.set_grad_enabled(track_gradients):
            log_prob = self.estimator.log_prob(theta.unsqueeze(1), x, **ode_kwargs)[:, 0]
        return self._masked(log_prob, theta, x, norm_posterior, leakage_correction_params)

    def log_prob_batched(
        self,
        theta: Tensor,
        x: Tensor,
        norm_posterior: bool = True,
        track_gradients: bool = False,
        leakage_correction_params: Optional[dict] = None,
        **ode_kwargs: Any,
    ) -> Tensor:
        r"""$\log q(\theta_{s,b} \mid x_b)$ for a batch of observations.

        Arguments:
            theta: Parameters of shape `(S, B, *theta_shape)`.
            x: Observations of shape `(B, *x_shape)`.
            norm_posterior: Whether to correct for mass outside the prior's support.
            track_gradients: Whether the result carries gradients.
            leakage_correction_params: Keywords of `leakage_correction`.
            **ode_kwargs: `exact`, `atol`, `rtol` of `sbi_cmpe.density.ode_log_prob`.

        Returns:
            Log densities of shape `(S, B)`.
        """
        self._require_density("`log_prob_batched`")
        x = self._checked_x(x)
        theta = self._checked_theta(theta)
        if theta.dim() != 2 + len(self.estimator.input_shape) or theta.shape[1] != len(x):
            raise ValueError(
                f"theta must have shape (S, {len(x)}, *theta_shape) for {len(x)} "
                f"observations, got {tuple(theta.shape)}."
            )
        with torch.set_grad_enabled(track_gradients):
            log_prob = self.estimator.log_prob(theta, x, **ode_kwargs)  # (S, B)
        return torch.stack(
            [
                self._masked(log_prob[:, b], theta[:, b], x[b : b + 1], norm_posterior,
                             leakage_correction_params)
                for b in range(len(x))
            ],
            dim=1,
        )  # fmt: skip

    def _one_x(self, x: Optional[Tensor]) -> Tensor:
        if x is None and self.default_x is None:
            raise ValueError(
                "No x given and no default x set: pass `x=...` or call "
                "`posterior.set_default_x(x_o)` first."
            )
        x = self._checked_x(self.default_x if x is None else x)
        if x.shape[0] > 1:
            raise ValueError(
                f"`.log_prob()` takes one observation, got a batch of {x.shape[0]}; use "
                "`.log_prob_batched()` for several."
            )
        return x

    def _masked(
        self,
        log_prob: Tensor,
        theta: Tensor,
        x: Tensor,
        norm_posterior: bool,
        leakage_correction_params: Optional[dict],
    ) -> Tensor:
        """`log_prob` with -inf outside the prior's support, leakage-corrected if asked."""
        inside = within_support(self.prior, theta).to(log_prob.device)
        log_prob = torch.where(inside, log_prob, torch.full_like(log_prob, -math.inf))
        if norm_posterior and not _unbounded(self.prior):
            rate = self.leakage_correction(x, **(leakage_correction_params or {}))
            log_prob = log_prob - math.log(rate)
        return log_prob

    @torch.no_grad()
    def leakage_correction(
        self,
        x: Tensor,
        num_rejection_samples: int = 10_000,
        force_update: bool = False,
        show_progress_bars: bool = False,
    ) -> float:
        r"""Fraction of the density's mass inside the prior's support at `x`.

        Estimated from `num_rejection_samples` draws of the density (`sample_ode`) and kept
        per x; `log_prob` divides by it when `norm_posterior=True`.

        Arguments:
            x: One observation.
            num_rejection_samples: Draws used for the estimate.
            force_update: Estimate again even if kept.
            show_progress_bars: Unused; sbi's signature.

        Returns:
            The fraction, at least 1 / `num_rejection_samples`.
        """
        x = self._checked_x(x)
        key = tuple(x.flatten().tolist())
        if force_update or key not in self._leakage:
            draws = self.sample_ode((num_rejection_samples,), x=x, reject_outside_prior=False)
            inside = within_support(self.prior, draws).float().mean().item()
            self._leakage[key] = max(inside, 1.0 / num_rejection_samples)
        return self._leakage[key]

    @torch.no_grad()
    def sample_ode(
        self,
        sample_shape: Shape = (),
        x: Optional[Tensor] = None,
        reject_outside_prior: bool = True,
        atol: float = 1e-5,
        rtol: float = 1e-5,
    ) -> Tensor:
        r"""Draws of exactly the density of `log_prob`, by its probability-flow ODE.

        One ODE solve for all draws: slower than `sample` (a few network calls per draw),
        but matched to `log_prob`, as importance weights need.

        Arguments:
            sample_shape: Shape of the samples.
            x: One observation; `None` uses the default x.
            reject_outside_prior: Whether draws outside the prior's support are drawn again
                (up to 100 rounds).
            atol: Absolute tolerance of the ODE solver.
            rtol: Relative tolerance of the ODE solver.

        Returns:
            Samples of shape `(*sample_shape, *theta_shape)`.
        """
        self._require_density("`sample_ode`")
        sample_shape = arguments.sample_shape(sample_shape)
        x = self._one_x(x)
        need, kept = sample_shape.numel(), []
        for _ in range(100):
            draws = ode_sample(self.estimator, max(need, 1), x, atol, rtol)[:, 0]  # (n, *θ)
            if reject_outside_prior and not _unbounded(self.prior):
                draws = draws[within_support(self.prior, draws)]
            kept.append(draws)
            need -= len(draws)
            if need <= 0:
                break
        else:
            raise RuntimeError("Fewer than 1 in 100 ODE draws fell inside the prior's support.")
        samples = torch.cat(kept)[: sample_shape.numel()]
        return samples.reshape(*sample_shape, *self.estimator.input_shape)

    def potential(
        self, theta: Tensor, x: Optional[Tensor] = None, track_gradients: bool = False
    ) -> Tensor:
        r"""The potential $\log q(\theta \mid x)$ inside the prior's support, $-\infty$
        outside (sbi's `PosteriorBasedPotential`), as used by MCMC and `map`.

        Arguments:
            theta: Parameters of shape `(N, *theta_shape)`.
            x: One observation; `None` uses the default x.
            track_gradients: Whether the result carries gradients.

        Returns:
            Potentials of shape `(N,)`.
        """
        self._require_density("`potential`")
        return super().potential(self._checked_theta(theta), self._one_x(x), track_gradients)

    def map(
        self,
        x: Optional[Tensor] = None,
        num_iter: int = 200,
        num_to_optimize: int = 10,
        learning_rate: float = 0.01,
        init_method: Union[str, Tensor] = "posterior",
        num_init_samples: int = 1_000,
        save_best_every: int = 20,
        show_progress_bars: bool = False,
        force_update: bool = False,
    ) -> Tensor:
        r"""The maximum of the posterior density (MAP), by sbi's gradient ascent on the
        potential from the `num_to_optimize` best of `num_init_samples` posterior draws.

        Each step solves the probability-flow ODE with gradients, so the defaults are
        smaller than sbi's (1,000 steps from 100 starts).

        Arguments:
            x: Deprecated in sbi; set the default x instead.
            num_iter: Steps of gradient ascent.
            num_to_optimize: Starting points.
            learning_rate: Learning rate of the ascent (in the prior's unconstrained space).
            init_method: `"posterior"`, `"prior"`, or a tensor of starting points.
            num_init_samples: Draws among which the starting points are chosen.
            save_best_every: Steps between evaluations of the best point.
            show_progress_bars: Whether to show a progress bar.
            force_update: Compute it again for the same default x.

        Returns:
            The MAP, of shape `(1, *theta_shape)`.
        """
        self._require_density("`map`")
        if isinstance(init_method, str) and init_method not in ("posterior", "prior"):
            raise ValueError(
                f"init_method must be 'posterior', 'prior' or a tensor, got {init_method!r}."
            )
        if init_method == "prior":
            init_method = self.prior.sample((num_init_samples,))
        return super().map(
            x=x,
            num_iter=num_iter,
            num_to_optimize=num_to_optimize,
            learning_rate=learning_rate,
            init_method=init_method,
            num_init_samples=num_init_samples,
            save_best_every=save_best_every,
            show_progress_bars=show_progress_bars,
            force_update=force_update,
        )

    def __repr__(self) -> str:
        e = self.estimator
        params = sum(p.numel() for p in e.parameters())
        default_x = "none" if self.default_x is None else f"shape {tuple(self.default_x.shape)}"
        return (
            f"ConsistencyPosterior(theta_shape={tuple(e.input_shape)}, "
            f"x_shape={tuple(e.condition_shape)}, num_steps={self.num_steps}, "
            f"eps={e.schedule.eps:g}, T={e.schedule.T:g}, density={e.density}, "
            f"parameters={params:,}, "
            f"prior={type(self.prior).__name__}, "
            f"device={self._device}, default_x={default_x})"
        )
