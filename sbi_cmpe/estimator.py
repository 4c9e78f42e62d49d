"""The consistency estimator: a network wrapped into sbi's `ConditionalEstimator`."""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Optional

import torch
from sbi.neural_nets.estimators.base import ConditionalEstimator
from torch import Tensor, nn

from sbi_cmpe.consistency import consistency_loss
from sbi_cmpe.sampling_net import shared_condition_net
from sbi_cmpe.schedule import NoiseSchedule

__all__ = ["ConsistencyEstimator"]


class ConsistencyEstimator(ConditionalEstimator):
    r"""Consistency model of the posterior $p(\theta \mid x)$.

    It holds the free-form network $F_\phi$, the embedding net of $x$ (z-scoring
    included) and the standardization of $\theta$, and exposes sbi's estimator
    interface: `loss(input, condition)` for training and
    `sample(sample_shape, condition)` for sampling. The network sees standardized
    parameters, so that $\sigma_\mathrm{data} = 1$ in the scalings, and the noise level
    through $\ln t$.

    Arguments:
        net: Network `(theta_t (B, D), embedded_x (B, C), log_t (B,)) -> (B, D)`,
            e.g. sbi's `VectorFieldMLP`.
        input_shape: Event shape of $\theta$.
        condition_shape: Event shape of $x$.
        embedding_net: Embedding of $x$, z-scoring included.
        theta_mean: Mean used to standardize $\theta$, broadcastable to `input_shape`.
        theta_std: Standard deviation used to standardize $\theta$.
        schedule: Noise levels of training and sampling; `None` for `NoiseSchedule()`
            (`consistency_nn` builds one with `sbi_cmpe.defaults.default_schedule`).
        num_steps: Default number of sampling steps.

    Attributes:
        schedule: The `NoiseSchedule`.
    """

    def __init__(
        self,
        net: nn.Module,
        input_shape: torch.Size,
        condition_shape: torch.Size,
        embedding_net: Optional[nn.Module] = None,
        theta_mean: Tensor | float = 0.0,
        theta_std: Tensor | float = 1.0,
        schedule: Optional[NoiseSchedule] = None,
        num_steps: int = 3,
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
        self.schedule = schedule
        self.num_steps = num_steps
        schedule.sampling_times(num_steps)  # validates num_steps

    def __setstate__(self, state: dict) -> None:
        """Restore a pickled estimator; those of 0.2.0.dev0 kept the schedule's seven
        constants as loose attributes, which become a `NoiseSchedule` here."""
        if "schedule" not in state:
            names = [f.name for f in fields(NoiseSchedule)]
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
        c_skip, c_out = self.schedule.scalings(t)  # (B,), (B,)
        out = self.net(theta_t, embedded_x, t.log())  # (B, D)
        return c_skip[:, None] * theta_t + c_out[:, None] * out

    def _embed(self, condition: Tensor) -> Tensor:
        self._check_condition_shape(condition)
        return self._embedding_net(condition).reshape(condition.shape[0], -1)  # (B, C)

    def loss(
        self,
        input: Tensor,
        condition: Tensor,
        num_points: Optional[int] = None,
        generator: Optional[torch.Generator] = None,
    ) -> Tensor:
        r"""Consistency training loss, see `sbi_cmpe.consistency.consistency_loss`.

        Arguments:
            input: Parameters of shape `(B, *input_shape)`.
            condition: Conditions of shape `(B, *condition_shape)`.
            num_points: Number of grid points $N(k)$ of the current curriculum stage;
                `None` uses the final grid ($s_1 + 1$ points).
            generator: Optional random generator, for a loss with fixed noise.

        Returns:
            Loss per element of the batch, shape `(B,)`.
        """
        self._check_input_shape(input)
        theta = (input.reshape(input.shape[0], -1) - self.theta_mean) / self.theta_std  # (B, D)
        return consistency_loss(
            self.consistency_function,
            theta,
            self._embed(condition),
            self.schedule.grid(num_points),
            p_mean=self.schedule.p_mean,
            p_std=self.schedule.p_std,
            generator=generator,
        )

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
            out = network(theta_t, math.log(tau))  # (n * B, D)
            theta = torch.add(theta_t * float(c_skip[i]), out, alpha=float(c_out[i]))
        theta = theta * self.theta_std + self.theta_mean
        return theta.reshape(*sample_shape, batch, *self.input_shape)
