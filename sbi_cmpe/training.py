r"""One pass of consistency training over the data.

Each optimizer step $k$ of a run of $K$ steps takes the grid size $N(k)$ of the iCT
curriculum and the cosine learning rate $\eta_k$, computes the consistency loss of a
batch (`ConsistencyEstimator.loss`), checks that the loss and the gradient are finite,
clips the gradient and steps the optimizer. `CMPEInference.train` runs the epochs, the
validation and the stopping rule around it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Optional

import torch

from sbi_cmpe.consistency import num_discretization_steps
from sbi_cmpe.estimator import ConsistencyEstimator
from sbi_cmpe.schedule import clip_gradients, cosine_learning_rate

__all__ = ["Progress", "train_epoch"]


@dataclass
class Progress:
    """Where a training run stands.

    Attributes:
        step: Optimizer steps taken so far (the curriculum position $k$).
        num_points: Grid points $N(k)$ of the last step; `None` before the first.
    """

    step: int = 0
    num_points: Optional[int] = None


def train_epoch(
    net: ConsistencyEstimator,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[Any],
    progress: Progress,
    total_steps: int,
    base_lr: float,
    clip_max_norm: Optional[float],
    device: str,
    epoch: int,
    bar: Any = None,
) -> float:
    r"""One pass over the training batches, ending early at step `total_steps`.

    `progress` is updated after every optimizer step, so an interrupted pass leaves it at
    the last step taken.

    Arguments:
        net: The estimator being trained.
        optimizer: Its optimizer.
        batches: Batches `(theta, x, mask)`.
        progress: The run's position, updated in place.
        total_steps: Steps $K$ of the run.
        base_lr: Initial learning rate $\eta_0$ of the cosine schedule.
        clip_max_norm: Largest total gradient norm; `None` for no clipping.
        device: Where the batches are moved.
        epoch: Number of the pass (from 1), for error messages.
        bar: Optional progress bar, advanced once per step.

    Returns:
        The mean training loss of the pass.

    Raises:
        RuntimeError: When the loss or the gradient is not finite; the weights are those
            of the last finite step.
    """
    loss_sum, count = 0.0, 0
    for theta, x, _ in batches:
        if progress.step >= total_steps:
            break
        theta, x = theta.to(device), x.to(device)
        num_points = num_discretization_steps(progress.step, total_steps, net.s0, net.s1)
        # The curriculum never goes back, also when a resumed run changes K.
        num_points = max(num_points, progress.num_points or 0)
        lr = cosine_learning_rate(progress.step, total_steps, base_lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        losses = net.loss(theta, x, num_points=num_points)  # (B,)
        loss = losses.mean()
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise RuntimeError(
                f"The training loss became {loss_value} at epoch {epoch}, "
                f"optimizer step {progress.step + 1}. The estimator keeps the weights of "
                "the last finite step; try a smaller learning_rate or clip_max_norm."
            )
        loss.backward()
        norm_value = clip_gradients(net.parameters(), clip_max_norm)
        if not math.isfinite(norm_value):
            raise RuntimeError(
                f"The gradient became {norm_value} at epoch {epoch}, optimizer "
                f"step {progress.step + 1}. The estimator keeps the weights of the last "
                "finite step; try a smaller learning_rate or clip_max_norm."
            )
        optimizer.step()
        progress.step += 1
        progress.num_points = num_points
        if bar is not None:
            bar.update(1)
        loss_sum += loss_value * len(theta)
        count += len(theta)
    return loss_sum / max(count, 1)
