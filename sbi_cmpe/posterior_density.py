"""The density methods of `ConsistencyPosterior`: `log_prob`, `potential`, `map`, leakage.

They need an estimator with a denoiser head (`consistency_nn(density=True)`) and say how to
get one otherwise. The density is the probability-flow ODE of `sbi_cmpe.density`.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Union

import torch
from sbi.sbi_types import Shape
from sbi.utils.sbiutils import gradient_ascent, within_support
from torch import Tensor
from torch.distributions import constraints

from sbi_cmpe import arguments
from sbi_cmpe.density import ode_sample

__all__ = ["DensityMethods", "no_density_message", "unbounded"]

_NO_DENSITY = (
    "This consistency model gives samples, not densities: {what} is not available. Train "
    "it with a density head, `CMPEInference(prior, density_estimator=consistency_nn("
    "density=True))` (estimators of sbi-cmpe 0.2 and earlier have none), or use `.sample()`."
)


def no_density_message(what: str) -> str:
    """The error message for `what` on an estimator without a density head."""
    return _NO_DENSITY.format(what=what)


def unbounded(prior: Any) -> bool:
    """Whether the prior's support is all of R^D (no rejection or leakage correction)."""
    from sbi.utils.sbiutils import ImproperEmpirical

    if isinstance(prior, ImproperEmpirical):  # sbi's stand-in when there is no prior
        return True
    try:
        support = prior.support
    except (NotImplementedError, AttributeError):
        return False
    while isinstance(support, constraints.independent):
        support = support.base_constraint
    return support is constraints.real


class DensityMethods:
    """Mixin of `ConsistencyPosterior`, which provides `estimator`, `prior`, `_one_x`,
    `_checked_x`, `_estimator_device`, `default_x`, `potential_fn` and sbi's
    `NeuralPosterior`."""

    @property
    def has_density(self) -> bool:
        """Whether the estimator has a denoiser head, and so `log_prob`, `potential`, `map`."""
        return self.estimator.density

    def _require_density(self, what: str) -> None:
        if not self.estimator.density:
            raise NotImplementedError(no_density_message(what))

    def _checked_theta(self, theta: Tensor) -> Tensor:
        shape = self.estimator.input_shape
        theta = arguments.float_tensor("theta", theta)
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
        x = self._one_x(x, "log_prob")
        theta = self._checked_theta(theta)
        shape = self.estimator.input_shape
        if theta.dim() > 1 + len(shape):
            raise ValueError(
                f"theta must have shape (N, {', '.join(map(str, shape))}) or "
                f"({', '.join(map(str, shape))}), got {tuple(theta.shape)}; use "
                "`log_prob_batched` for parameters of several observations."
            )
        theta = theta.reshape(-1, *shape)
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
            theta: Parameters of shape `(S, B, *theta_shape)`, or `(B, *theta_shape)` for
                one set per observation (`S = 1`).
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
        if theta.dim() == 1 + len(self.estimator.input_shape):
            theta = theta.unsqueeze(0)  # (1, B, *theta_shape), as sbi reads it
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
        if norm_posterior and not unbounded(self.prior):
            rate = self.leakage_correction(x, **(leakage_correction_params or {}))
            log_prob = log_prob - math.log(float(rate))
        return log_prob

    @torch.no_grad()
    def leakage_correction(
        self,
        x: Tensor,
        num_rejection_samples: int = 10_000,
        force_update: bool = False,
        show_progress_bars: bool = False,
        rejection_sampling_batch_size: int = 10_000,
    ) -> Tensor:
        r"""Fraction of the density's mass inside the prior's support at `x`.

        Estimated from `num_rejection_samples` draws of the density (`sample_ode`) and kept
        per x; `log_prob` divides by it when `norm_posterior=True`.

        Arguments:
            x: One observation.
            num_rejection_samples: Draws used for the estimate.
            force_update: Estimate again even if kept.
            show_progress_bars: Unused; sbi's signature.
            rejection_sampling_batch_size: Most draws per ODE solve.

        Returns:
            The fraction (a scalar tensor), at least 1 / `num_rejection_samples`.
        """
        x = self._checked_x(x)
        if len(x) != 1:
            raise ValueError(f"leakage_correction takes one observation, got a batch of {len(x)}.")
        num = arguments.positive_int("num_rejection_samples", num_rejection_samples)
        per_solve = arguments.positive_int(
            "rejection_sampling_batch_size", rejection_sampling_batch_size
        )
        key = tuple(x.flatten().tolist())
        if force_update or key not in self._leakage:
            inside = 0
            for start in range(0, num, per_solve):
                draws = self.sample_ode(
                    (min(per_solve, num - start),), x=x, reject_outside_prior=False
                )
                inside += int(within_support(self.prior, draws).sum())
            self._leakage[key] = max(inside / num, 1.0 / num)
        return torch.tensor(self._leakage[key])

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
        x = self._one_x(x, "sample_ode")
        need, kept = sample_shape.numel(), []
        for _ in range(100):
            draws = ode_sample(self.estimator, max(need, 1), x, atol, rtol)[:, 0]  # (n, *θ)
            if reject_outside_prior and not unbounded(self.prior):
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
        return super().potential(
            self._checked_theta(theta), self._one_x(x, "potential"), track_gradients
        )

    def _calculate_map(
        self,
        num_iter: int = 200,
        num_to_optimize: int = 10,
        learning_rate: float = 0.01,
        init_method: Union[str, Tensor] = "posterior",
        num_init_samples: int = 1_000,
        save_best_every: int = 20,
        show_progress_bars: bool = False,
    ) -> Tensor:
        """sbi's gradient ascent from the best starting points, which returns the best start
        itself when no step of the ascent beats it.

        sbi 0.27's `gradient_ascent` keeps its best start in the parameter space but maps what
        it returns through the inverse of the prior's transform, so with a bounded prior a
        start that no step improves comes back moved to `transform.inv(start)`, off the
        posterior. Here the potentials of the starts are compared with the result's.
        """
        if isinstance(init_method, str):  # "posterior": `map` turned "prior" into draws
            inits = self.sample((num_init_samples,), show_progress_bars=False)  # (n, *θ)
        else:
            inits = init_method
        potentials = self.potential_fn(inits).detach()  # (n,)
        starts = inits[potentials.argsort()[-num_to_optimize:]]  # best last
        found = gradient_ascent(
            potential_fn=self.potential_fn,
            inits=starts,
            theta_transform=self.theta_transform,
            num_iter=num_iter,
            num_to_optimize=num_to_optimize,
            learning_rate=learning_rate,
            save_best_every=save_best_every,
            show_progress_bars=show_progress_bars,
        )[0]  # (1, *θ)
        if self.potential_fn(found).max() >= potentials.max():
            return found
        return starts[-1:]

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
