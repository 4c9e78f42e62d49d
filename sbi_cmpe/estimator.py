"""The consistency estimator: a network wrapped into sbi's `ConditionalEstimator`."""

from __future__ import annotations

import math
from typing import Any, Literal, Optional, Union

import torch
from sbi.neural_nets.estimators.base import ConditionalEstimator
from torch import Tensor, nn

from sbi_cmpe.consistency import (
    consistency_distance,
    consistency_loss,
    consistency_teacher,
    training_pairs,
)
from sbi_cmpe.density import denoiser_scalings, denoising_loss, ode_log_prob
from sbi_cmpe.sampling_net import shared_condition_net
from sbi_cmpe.schedule import NoiseSchedule

__all__ = ["ConsistencyEstimator", "UNCHOSEN_STEPS"]

# Sampling steps of an estimator with `num_steps="auto"` until training chooses them (and
# of its validations during training).
UNCHOSEN_STEPS = 3


class ConsistencyEstimator(ConditionalEstimator):
    r"""Consistency model of the posterior $p(\theta \mid x)$.

    It holds the free-form network $F_\phi$, the embedding net of $x$ (z-scoring
    included) and the standardization of $\theta$, and exposes sbi's estimator
    interface: `loss(input, condition)` for training and
    `sample(sample_shape, condition)` for sampling. The network sees standardized
    parameters, so that $\sigma_\mathrm{data} = 1$ in the scalings, and the noise level
    through $\ln t$.

    With `density=True` the network has a second head: its last $D$ outputs $G$ give the
    denoiser $D = c_\mathrm{skip}(t) \theta_t + c_\mathrm{out}(t) G$ (EDM scalings),
    trained jointly by denoising score matching at the student's noise levels, and
    `log_prob` integrates its probability-flow ODE (`sbi_cmpe.density`).

    Arguments:
        net: Network `(theta_t (B, D), embedded_x (B, C), log_t (B,)) -> (B, D)`,
            e.g. sbi's `VectorFieldMLP`; `(B, 2 D)` with `density=True`.
        input_shape: Event shape of $\theta$.
        condition_shape: Event shape of $x$.
        embedding_net: Embedding of $x$, z-scoring included.
        theta_mean: Mean used to standardize $\theta$, broadcastable to `input_shape`.
        theta_std: Standard deviation used to standardize $\theta$.
        theta_slope: Slope $A$ `(X, D)` of a centre of $\theta$ linear in the flattened
            $x$, $\mu(x) = \bar\theta + (x - \bar x) A$
            (`sbi_cmpe.standardize.linear_z_score`); `None` for the constant centre
            `theta_mean`.
        x_center: $\bar x$ `(X,)` of that centre; needed with `theta_slope`.
        schedule: Noise levels of training and sampling; `None` for `NoiseSchedule()`
            (`consistency_nn` builds one with `sbi_cmpe.defaults.default_schedule`).
        num_steps: Default number of sampling steps, or `"auto"` for the number that
            `CMPEInference.train` chooses on its validation simulations (`sbi_cmpe.steps`;
            `UNCHOSEN_STEPS` until then).
        density: Whether the network has a denoiser head (and the estimator a density).
        denoiser_weight: Weight of the denoising loss against the consistency loss.

    Attributes:
        schedule: The `NoiseSchedule`.
        density: Whether `log_prob` is available.
        num_steps: The default number of sampling steps.
        auto_steps: Whether training chooses `num_steps`.
        step_choice: The last choice (`sbi_cmpe.steps.StepChoice`), `None` before one.
    """

    # Estimators pickled before the denoiser head or the step choice existed have neither.
    density: bool = False
    denoiser_weight: float = 1.0
    auto_steps: bool = False
    step_choice: Any = None

    def __init__(
        self,
        net: nn.Module,
        input_shape: torch.Size,
        condition_shape: torch.Size,
        embedding_net: Optional[nn.Module] = None,
        theta_mean: Tensor | float = 0.0,
        theta_std: Tensor | float = 1.0,
        theta_slope: Optional[Tensor] = None,
        x_center: Optional[Tensor] = None,
        schedule: Optional[NoiseSchedule] = None,
        num_steps: Union[int, Literal["auto"]] = 3,
        density: bool = False,
        denoiser_weight: float = 1.0,
    ) -> None:
        super().__init__(input_shape=input_shape, condition_shape=condition_shape)
        if schedule is None:
            schedule = NoiseSchedule()
        if not isinstance(schedule, NoiseSchedule):
            raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}.")
        self.net = net
        self._embedding_net = nn.Identity() if embedding_net is None else embedding_net
        dim = self.input_shape.numel()
        self.register_buffer(
            "theta_mean", torch.as_tensor(theta_mean).float().reshape(-1).expand(dim).clone()
        )
        self.register_buffer(
            "theta_std", torch.as_tensor(theta_std).float().reshape(-1).expand(dim).clone()
        )
        if (theta_slope is None) != (x_center is None):
            raise ValueError("theta_slope and x_center are given together or not at all.")
        if theta_slope is not None:
            width = self.condition_shape.numel()
            if theta_slope.shape != (width, dim) or x_center.shape != (width,):
                raise ValueError(
                    f"theta_slope must have shape ({width}, {dim}) and x_center ({width},), "
                    f"got {tuple(theta_slope.shape)} and {tuple(x_center.shape)}."
                )
            theta_slope, x_center = theta_slope.float(), x_center.float()
        # Not in the state dict when None (estimators pickled before it have neither).
        self.register_buffer("theta_slope", theta_slope)
        self.register_buffer("x_center", x_center)
        self.schedule = schedule
        self.auto_steps = isinstance(num_steps, str) and num_steps == "auto"
        self.num_steps = UNCHOSEN_STEPS if self.auto_steps else num_steps
        self.step_choice = None
        self.density = bool(density)
        self.denoiser_weight = float(denoiser_weight)
        schedule.sampling_times(self.num_steps)  # validates num_steps

    def __setstate__(self, state: dict) -> None:
        """Restore a pickled estimator; those of 0.2.0.dev0 kept the schedule's seven
        constants as loose attributes, which become a `NoiseSchedule` here."""
        if "schedule" not in state:
            names = ["eps", "T", "rho", "s0", "s1", "p_mean", "p_std"]  # 0.2.0.dev0's seven
            missing = [n for n in names if n not in state]
            if missing:
                raise RuntimeError(
                    "This pickled ConsistencyEstimator has neither a noise schedule nor its "
                    f"constants ({', '.join(missing)} missing); it cannot be loaded by "
                    "this version of sbi-cmpe. Retrain it with CMPEInference."
                )
            state = dict(state)
            state["schedule"] = NoiseSchedule(**{n: state.pop(n) for n in names})
        super().__setstate__(state)

    def theta_center(self, condition: Tensor) -> Tensor:
        r"""The centre of the standardization of $\theta$ at each condition,
        $\mu(x) = \bar\theta + (x - \bar x) A$ (or $\bar\theta$ without a slope).

        Arguments:
            condition: Conditions of shape `(B, *condition_shape)`.

        Returns:
            Centres of shape `(B, D)`; standardized $\theta$ is
            $(\theta - \mu(x)) / \sigma$ with $\sigma$ = `theta_std`.
        """
        batch, dim = condition.shape[0], self.input_shape.numel()
        slope = self._buffers.get("theta_slope")
        if slope is None:
            return self.theta_mean.expand(batch, dim)
        flat = condition.reshape(batch, -1).to(slope.dtype) - self.x_center  # (B, X)
        return self.theta_mean + flat @ slope  # (B, D)

    def standardize(self, theta: Tensor, condition: Tensor) -> Tensor:
        r"""$(\theta - \mu(x)) / \sigma$ for parameters `(..., B, D)` at conditions
        `(B, *condition_shape)`."""
        return (theta - self.theta_center(condition)) / self.theta_std

    def unstandardize(self, theta: Tensor, condition: Tensor) -> Tensor:
        r"""$\mu(x) + \sigma \tilde\theta$ for standardized parameters `(..., B, D)` at
        conditions `(B, *condition_shape)`."""
        return theta * self.theta_std + self.theta_center(condition)

    @property
    def embedding_net(self) -> nn.Module:
        """The embedding net of $x$ (z-scoring included)."""
        return self._embedding_net

    def consistency_function(self, theta_t: Tensor, t: Tensor, embedded_x: Tensor) -> Tensor:
        r"""The consistency function $f = c_\mathrm{skip}(t) \theta_t + c_\mathrm{out}(t) F$.

        Arguments:
            theta_t: Noisy standardized parameters of shape `(B, D)`.
            t: Noise levels of shape `(B,)`.
            embedded_x: Embedded conditions of shape `(B, C)`.

        Returns:
            Standardized parameter estimates of shape `(B, D)`.
        """
        out = self.net(theta_t, embedded_x, t.log())  # (B, D) or (B, 2 D)
        return self._consistency_head(theta_t, t, out)

    def _consistency_head(self, theta_t: Tensor, t: Tensor, out: Tensor) -> Tensor:
        c_skip, c_out = self.schedule.scalings(t)  # (B,), (B,)
        return c_skip[:, None] * theta_t + c_out[:, None] * out[:, : theta_t.shape[1]]

    def _denoiser_head(self, theta_t: Tensor, t: Tensor, out: Tensor) -> Tensor:
        if out.shape[1] != 2 * theta_t.shape[1]:
            raise ValueError(
                f"density=True needs a network with 2 D = {2 * theta_t.shape[1]} outputs (the "
                f"consistency head, then the denoiser head), got {out.shape[1]}; build it with "
                "consistency_nn(density=True)."
            )
        c_skip, c_out = denoiser_scalings(t)  # (B,), (B,)
        return c_skip[:, None] * theta_t + c_out[:, None] * out[:, theta_t.shape[1] :]

    def denoiser(self, theta_t: Tensor, t: Tensor, embedded_x: Tensor) -> Tensor:
        r"""The denoiser $D(\theta_t, t, x) \approx E[\theta \mid \theta_t, x]$.

        Arguments:
            theta_t: Noisy standardized parameters of shape `(B, D)`.
            t: Noise levels of shape `(B,)`.
            embedded_x: Embedded conditions of shape `(B, C)`.

        Returns:
            Standardized parameter estimates of shape `(B, D)`.
        """
        self._require_density("the denoiser")
        out = self.net(theta_t, embedded_x, t.log())  # (B, 2 D)
        return self._denoiser_head(theta_t, t, out)

    def _require_density(self, what: str) -> None:
        if not self.density:
            raise NotImplementedError(
                f"This consistency estimator has no density head, so {what} is not "
                "available: train with `consistency_nn(density=True)` (estimators of "
                "sbi-cmpe 0.2 and earlier have none)."
            )

    def _embed(self, condition: Tensor) -> Tensor:
        self._check_condition_shape(condition)
        return self._embedding_net(condition).reshape(condition.shape[0], -1)  # (B, C)

    def loss(
        self,
        input: Tensor,
        condition: Tensor,
        num_points: Optional[int] = None,
        generator: Optional[torch.Generator] = None,
        warm_start: bool = False,
    ) -> Tensor:
        r"""Consistency training loss, see `sbi_cmpe.consistency.consistency_loss` (in the
        warm start with its teacher at $\epsilon$, on the final grid).

        Arguments:
            input: Parameters of shape `(B, *input_shape)`.
            condition: Conditions of shape `(B, *condition_shape)`.
            num_points: Number of grid points $N(k)$ of the current curriculum stage;
                `None` uses the final grid ($s_1 + 1$ points). Unused with `warm_start`.
            generator: Optional random generator, for a loss with fixed noise.
            warm_start: Whether to take the warm-start loss (teacher at $\epsilon$).

        Returns:
            Loss per element of the batch, shape `(B,)`.
        """
        self._check_input_shape(input)
        theta = self.standardize(input.reshape(input.shape[0], -1), condition)  # (B, D)
        if warm_start:
            num_points = None  # the warm start draws its noise levels from the final grid
        if self.density:
            return self._joint_loss(
                theta, self._embed(condition), num_points, generator, warm_start
            )
        return consistency_loss(
            self.consistency_function,
            theta,
            self._embed(condition),
            self.schedule.grid(num_points),
            p_mean=self.schedule.p_mean,
            p_std=self.schedule.p_std,
            generator=generator,
            warm_start=warm_start,
        )

    def _joint_loss(
        self,
        theta: Tensor,
        embedded_x: Tensor,
        num_points: Optional[int],
        generator: Optional[torch.Generator],
        warm_start: bool = False,
    ) -> Tensor:
        """Consistency loss (with its teacher at epsilon in the warm start) plus
        `denoiser_weight` times the denoising loss, the latter at the student's noisy points
        (one forward pass gives both heads)."""
        schedule = self.schedule
        t_lo, t_hi, z = training_pairs(
            schedule.grid(num_points),
            *theta.shape,
            schedule.p_mean,
            schedule.p_std,
            generator,
            theta.device,
            theta.dtype,
        )
        theta_hi = theta + t_hi[:, None] * z  # (B, D)
        out = self.net(theta_hi, embedded_x, t_hi.log())  # (B, 2 D)
        student = self._consistency_head(theta_hi, t_hi, out)
        t_lo, teacher = consistency_teacher(
            self.consistency_function, theta, z, t_lo, embedded_x, schedule.eps, warm_start
        )
        denoised = self._denoiser_head(theta_hi, t_hi, out)
        return consistency_distance(
            student, teacher, t_lo, t_hi
        ) + self.denoiser_weight * denoising_loss(denoised, theta, t_hi)

    def log_prob(self, input: Tensor, condition: Tensor, **kwargs: Any) -> Tensor:
        r"""Log density of the model's posterior, by its probability-flow ODE.

        See `sbi_cmpe.density.ode_log_prob` for the method and the keywords (`exact`,
        `atol`, `rtol`).

        Arguments:
            input: Parameters of shape `(S, B, *input_shape)` (sbi's sample-batch layout).
            condition: Conditions of shape `(B, *condition_shape)`.

        Returns:
            $\log q(\theta \mid x)$ of shape `(S, B)`.
        """
        self._require_density("`log_prob`")
        return ode_log_prob(self, input, condition, **kwargs)

    @torch.no_grad()
    def sample(
        self,
        sample_shape: torch.Size,
        condition: Tensor,
        num_steps: Optional[int] = None,
        generator: Optional[torch.Generator] = None,
    ) -> Tensor:
        r"""Multistep consistency sampling (Song et al., 2023, Algorithm 1).

        $\theta \leftarrow f(T z, T, x)$, then for $\tau = \tau_2, \dots, \tau_K$:
        $\theta \leftarrow f(\theta + \sqrt{\tau^2 - \epsilon^2} z', \tau, x)$; one network
        call per step, each over all draws and conditions at once.

        Arguments:
            sample_shape: Number of draws per condition, as a shape.
            condition: Conditions of shape `(B, *condition_shape)`.
            num_steps: Number of steps $K \geq 1$; `None` uses the estimator's default.
            generator: Optional CPU random generator (for draws with fixed noise).

        Returns:
            Samples of shape `(*sample_shape, B, *input_shape)`.
        """
        num_steps = self.num_steps if num_steps is None else num_steps
        times = self.schedule.sampling_times(num_steps).tolist()
        sample_shape = torch.Size(sample_shape)
        n, batch, dim = sample_shape.numel(), condition.shape[0], self.input_shape.numel()
        # All draws of a step share tau, and the draws of one x share x (draw-major rows).
        network = shared_condition_net(self.net, self._embed(condition))  # x: (B, C)
        theta = torch.empty(n * batch, dim, device=condition.device)
        c_skip, c_out = self.schedule.scalings(torch.tensor(times, dtype=torch.float64))  # (K,)
        for i, tau in enumerate(times):
            if generator is None:
                noise = torch.randn_like(theta)
            else:
                noise = torch.randn(theta.shape, generator=generator).to(theta.device)
            if i == 0:
                theta_t = tau * noise
            else:
                theta_t = theta + math.sqrt(tau**2 - self.schedule.eps**2) * noise
            # f(theta_t, tau, x) = c_skip(tau) theta_t + c_out(tau) F(theta_t, tau, x)
            out = network(theta_t, math.log(tau))  # (n * B, D), or (n * B, 2 D) with density
            out = out[:, :dim] if self.density else out
            theta = torch.add(theta_t * float(c_skip[i]), out, alpha=float(c_out[i]))
        theta = self.unstandardize(theta.reshape(n, batch, dim), condition)
        return theta.reshape(*sample_shape, batch, *self.input_shape)
