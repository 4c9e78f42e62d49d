r"""The noise schedule of a consistency model: noise levels, curriculum and timestep law.

One frozen object holds every constant that places noise levels on $[\epsilon, T]$:

- the Karras grid of the training curriculum, refined from $s_0$ to $s_1$ intervals
  (`num_points`, `grid`);
- the discrete lognormal law of the training noise levels, with mean $P_\mathrm{mean}$ and
  standard deviation $P_\mathrm{std}$ of $\ln t$ (`timestep_probabilities`);
- the decreasing noise levels of multistep sampling (`sampling_times`);
- the skip and output scalings of the consistency function (`scalings`).

The formulas live in `sbi_cmpe.consistency`; this object binds them to one set of constants,
so that the estimator, its loss, its sampler and the training loop cannot disagree.
`ConsistencyEstimator` holds one, and `consistency_nn` builds it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

from torch import Tensor

from sbi_cmpe.consistency import (
    P_MEAN,
    P_STD,
    karras_grid,
    num_discretization_steps,
    sampling_times,
    scalings,
    timestep_probabilities,
)

__all__ = ["NoiseSchedule"]


@dataclass(frozen=True)
class NoiseSchedule:
    r"""Noise levels $t \in [\epsilon, T]$ of training and sampling.

    Arguments:
        eps: Smallest noise level $\epsilon > 0$, where $f(\theta, \epsilon, x) = \theta$.
        T: Largest noise level $T > \epsilon$, in units of the standardized parameters.
        rho: Curvature $\rho$ of the Karras grid; larger values put more points near
            $\epsilon$.
        s0: Grid intervals at the start of the training curriculum.
        s1: Grid intervals at its end ($s_1 \geq s_0$).
        p_mean: Mean of $\ln t$ of the training noise levels.
        p_std: Standard deviation of $\ln t$ of the training noise levels ($> 0$).
        step_levels: Sampling noise levels after $T$ for some numbers of steps, one
            decreasing tuple in $(\epsilon, T)$ per number of steps (its length + 1), e.g.
            `((0.4, 0.05),)` for 3 steps; the others, and all with `()`, sample at the first
            points of the Karras grid (`sbi_cmpe.consistency.sampling_times`).
            `sbi_cmpe.defaults.default_schedule`, which `consistency_nn` uses when given no
            schedule, sets `sbi_cmpe.defaults.STEP_LEVELS`.

    Example:
        >>> schedule = NoiseSchedule(T=5.0)
        >>> schedule.grid(4).shape
        torch.Size([4])
        >>> schedule.num_points(step=999, total_steps=1000)
        51
    """

    eps: float = 1e-3
    T: float = 10.0
    rho: float = 7.0
    s0: int = 10
    s1: int = 50
    p_mean: float = P_MEAN
    p_std: float = P_STD
    step_levels: Tuple[Tuple[float, ...], ...] = ()

    def __post_init__(self) -> None:
        if not 0 < self.eps < self.T:
            raise ValueError(f"Need 0 < eps < T, got eps={self.eps} and T={self.T}.")
        if not self.rho > 0:
            raise ValueError(f"rho must be positive, got {self.rho}.")
        for name in ("s0", "s1"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {value!r}.")
        if not 1 <= self.s0 <= self.s1:
            raise ValueError(f"Need 1 <= s0 <= s1, got s0={self.s0} and s1={self.s1}.")
        if not self.p_std > 0:
            raise ValueError(f"p_std must be positive, got {self.p_std}.")
        if any(not isinstance(each, (tuple, list)) for each in self.step_levels):
            raise TypeError(
                f"step_levels must be a tuple of tuples, one per number of steps (e.g. "
                f"((0.4, 0.05),) for 3 steps), got {self.step_levels!r}."
            )
        levels = tuple(tuple(float(t) for t in each) for each in self.step_levels)
        object.__setattr__(self, "step_levels", levels)
        for each in levels:
            bounds = (self.T, *each, self.eps)
            if not each or any(not a > b for a, b in zip(bounds, bounds[1:])):  # NaN fails too
                raise ValueError(
                    f"step_levels {each} must decrease strictly between T={self.T} and "
                    f"eps={self.eps}."
                )
        if len({len(each) for each in levels}) < len(levels):
            raise ValueError("step_levels holds two tuples for the same number of steps.")

    def num_points(self, step: int, total_steps: int) -> int:
        """Grid points $N(k)$ of the curriculum at optimizer step $k$ of a run of $K$ steps
        (`sbi_cmpe.consistency.num_discretization_steps`)."""
        return num_discretization_steps(step, total_steps, self.s0, self.s1)

    def grid(self, num_points: int | None = None) -> Tensor:
        """Increasing noise levels `(N,)` from $\\epsilon$ to $T$; `None` for the final grid
        of $s_1 + 1$ points."""
        n = self.s1 + 1 if num_points is None else num_points
        return karras_grid(n, self.eps, self.T, self.rho)

    def timestep_probabilities(self, grid: Tensor) -> Tensor:
        """Probabilities `(N - 1,)` of the intervals of `grid` (discrete lognormal)."""
        return timestep_probabilities(grid, self.p_mean, self.p_std)

    def sampling_times(self, num_steps: int) -> Tensor:
        """Decreasing noise levels `(K,)` of `num_steps` sampling steps, from $T$."""
        return sampling_times(num_steps, self.eps, self.T, self.rho, self.step_levels)

    def scalings(self, t: Tensor) -> tuple[Tensor, Tensor]:
        r"""$(c_\mathrm{skip}(t), c_\mathrm{out}(t))$ for standardized parameters."""
        return scalings(t, self.eps)
