r"""A training run of consistency training: its lasting state, its epochs and one pass.

Each optimizer step $k$ of a run of $K$ steps takes the grid size $N(k)$ of the iCT
curriculum and the cosine learning rate $\eta_k$, computes the consistency loss of a
batch (`ConsistencyEstimator.loss`; in the first $K_w$ steps, the warm start, its teacher
sits at $\epsilon$, and the warm start and the consistency training after it each have their
own cosine cycle, `Run.phase`), checks that the loss and the gradient are finite,
clips the gradient and steps the optimizer (`train_epoch`). `run_epochs` repeats such
passes, validates and applies the stopping rule (`sbi_cmpe.validation`) until step $K$;
`start_run` sets a call's budget $K$ and optimizer (`sbi_cmpe.training_round` runs a call
and closes it). `Run`
holds what must outlive one call of `CMPEInference.train`, so that `resume_training=True`
continues the same run.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional

import torch
from sbi.sbi_types import Tracker
from tqdm.auto import tqdm

from sbi_cmpe.defaults import default_learning_rate, default_num_steps
from sbi_cmpe.estimator import ConsistencyEstimator
from sbi_cmpe.optim import adam, clip_gradients, cosine_learning_rate
from sbi_cmpe.validation import StoppingRule, validation_interval

__all__ = ["Progress", "Run", "run_epochs", "start_run", "train_epoch"]


@dataclass
class Progress:
    """Where a training run stands.

    Attributes:
        step: Optimizer steps taken so far (the curriculum position $k$).
        num_points: Grid points $N(k)$ of the last step; `None` before the first.
    """

    step: int = 0
    num_points: Optional[int] = None


@dataclass
class Run:
    r"""The state of a training run that outlives one call of `CMPEInference.train`.

    Attributes:
        optimizer: The run's optimizer.
        base_lr: Initial learning rate $\eta_0$ of the cosine schedule.
        progress: Optimizer step and grid size reached.
        stopping: The stopping rule, with the best weights seen.
        epoch: Epochs done.
        total_steps: Steps $K$ of the current call's budget.
        val_loss: The last validation score.
        interrupted: Whether the last call ended before its loop did.
        warm_steps: Steps $K_w$ of the warm start (`sbi_cmpe.consistency.consistency_teacher`),
            counted from the run's first step; no validation runs until step $K_w$.
    """

    optimizer: torch.optim.Optimizer
    base_lr: float
    warm_steps: int = 0
    progress: Progress = field(default_factory=Progress)
    stopping: StoppingRule = field(default_factory=StoppingRule)
    epoch: int = 0
    total_steps: int = 0
    val_loss: float = math.inf
    interrupted: bool = False

    def phase(self, step: int) -> tuple[int, int]:
        r"""Position $(k', K')$ of optimizer step `step` within its phase.

        A run with a warm start is two phases, each with its own cosine learning rate
        (and the second with the whole iCT curriculum): the warm start, steps
        $0, \dots, K_w - 1$ ($k' = k$, $K' = K_w$), then consistency training
        ($k' = k - K_w$, $K' = K - K_w$). Without a warm start $(k', K') = (k, K)$. During
        the warm start the curriculum position (`Progress.num_points`, logged as
        `num_discretization_points`) stays at the first stage, although its loss draws its
        noise levels from the final grid; a consistency phase of one step (a fraction near 1)
        takes that step at the initial learning rate.
        """
        if step < self.warm_steps:
            return step, self.warm_steps
        return step - self.warm_steps, self.total_steps - self.warm_steps


def start_run(
    net: ConsistencyEstimator,
    batches: int,
    num_simulations: int,
    max_num_epochs: Optional[int],
    learning_rate: Optional[float],
    resumed: Optional[Run],
    warm_start: Optional[float] = None,
) -> tuple[Run, int]:
    r"""The run of one call of `CMPEInference.train`: its budget, warm start and optimizer.

    The budget is `max_num_epochs` epochs of `batches` steps, or, when that is `None`,
    `default_num_steps(D, num_simulations)` rounded up to whole epochs. A new run starts
    Adam on the network's device at `learning_rate` (`default_learning_rate(D)` when
    `None`) and spends the first $\lfloor$ `warm_start` $\cdot K \rfloor$ of its $K$ steps in
    the warm start (none when `None`); a resumed run keeps its optimizer,
    rate and warm start and warns if another rate or warm start is given. The last step of a
    call is never part of the warm start.

    Arguments:
        net: The estimator to train, on its device.
        batches: Training batches per epoch.
        num_simulations: Simulations of the training and validation split.
        max_num_epochs: Epochs of the call; `None` for the default budget.
        learning_rate: Initial learning rate; `None` for the default.
        resumed: The earlier run to continue; `None` for a new run.
        warm_start: Fraction of a new run's steps in the warm start; `None` for none (the
            trainer resolves its default, `default_warm_start`, for new networks).

    Returns:
        The run (its `total_steps` and validation interval set) and the epochs of the call.
    """
    dim = net.input_shape.numel()
    if max_num_epochs is None:
        num_steps = default_num_steps(dim, num_simulations)
        max_num_epochs = max(1, math.ceil(num_steps / batches))
    total_steps = max_num_epochs * batches
    if resumed is not None:
        run = resumed
        kept = (
            ("learning_rate", learning_rate, f"learning rate ({run.base_lr})"),
            ("warm_start", warm_start, f"warm start ({run.warm_steps} steps)"),
        )
        for name, value, what in kept:
            if value is not None:
                warnings.warn(
                    f"{name}={value} is ignored: resume_training=True continues the previous "
                    f"run with its {what}, as in sbi.",
                    stacklevel=3,
                )
    else:
        if learning_rate is None:
            learning_rate = default_learning_rate(dim)
        device = str(next(net.parameters()).device)
        warm_steps = math.floor((warm_start or 0.0) * total_steps)
        run = Run(adam(net.parameters(), learning_rate, device), learning_rate, warm_steps)
    # At least the last step of a call is consistency training, also when resumed.
    run.warm_steps = min(run.warm_steps, total_steps - 1)
    run.total_steps = total_steps
    run.stopping.every = validation_interval(batches)
    return run, max_num_epochs


def run_epochs(
    run: Run,
    net: ConsistencyEstimator,
    batches: Iterable[Any],
    *,
    validate: Callable[[], float],
    clip_max_norm: Optional[float],
    stop_after_epochs: int,
    device: str,
    summary: Dict[str, List[float]],
    tracker: Tracker,
    show_progress: bool = False,
) -> None:
    r"""Epochs of `train_epoch` until step `run.total_steps` or until the stopping rule ends
    the run; then the best weights come back if the rule asks for them.

    After each epoch the training loss and duration go to `summary` and `tracker`, the
    grid size and learning rate to `tracker`. Validations (`validate`) come when
    `run.stopping` says they are due (after each epoch that ends at least
    `sbi_cmpe.validation.MIN_STEPS_PER_VALIDATION` steps after the last validation, and after
    the last epoch; none during the warm start, whose end the spacing counts from);
    their scores go to both, and the epochs they follow (counted over every call of
    `train`, as the tracker's steps) to `summary["validation_epochs"]`, since there are fewer
    validations than epochs. Only in the last curriculum stage (more than $s_1$ grid points)
    does a degraded score count towards stopping, and any score that is not degraded resets
    the count. An interruption (e.g. `KeyboardInterrupt`) propagates and leaves
    `run.interrupted` set, the weights as they are and `net` in evaluation mode.

    Arguments:
        run: The run, updated in place.
        net: The estimator being trained.
        batches: Training batches `(theta, x, mask)`.
        validate: Returns the validation score of `net` (lower is better).
        clip_max_norm: Largest total gradient norm; `None` for no clipping.
        stop_after_epochs: Patience of the stopping rule, in epochs.
        device: Where the batches are moved.
        summary: sbi's training summary (lists per statistic), appended to.
        tracker: Where metrics are logged.
        show_progress: Whether a progress bar counts the run's optimizer steps.

    """
    run.interrupted = True  # until the loop ends normally
    bar = tqdm(
        total=run.total_steps,
        initial=min(run.progress.step, run.total_steps),
        disable=not show_progress,
        desc="Training CMPE",
        unit="step",
    )
    try:
        while run.progress.step < run.total_steps:
            start = time.time()
            net.train()
            train_loss = train_epoch(run, net, batches, clip_max_norm, device, bar)
            run.epoch += 1
            summary["training_loss"].append(train_loss)
            # Per-epoch statistics are logged at their place in the summary, which counts
            # the epochs of every call of `train` (a new run does not restart it).
            epoch = len(summary["training_loss"])
            tracker.log_metric("training_loss", train_loss, epoch)
            tracker.log_metric("num_discretization_points", run.progress.num_points, epoch)
            tracker.log_metric("learning_rate", run.optimizer.param_groups[0]["lr"], epoch)
            net.eval()
            stop = False
            if run.progress.step <= run.warm_steps:  # the spacing counts from its end
                run.stopping.last_epoch = run.epoch
            elif run.stopping.due(run.epoch, last=run.progress.step >= run.total_steps):
                run.val_loss = validate()
                summary["validation_loss"].append(run.val_loss)
                # Trainers of 0.2 have scores without epochs: theirs are unknown.
                known = summary.setdefault("validation_epochs", [])
                known += [None] * (len(summary["validation_loss"]) - 1 - len(known)) + [epoch]
                tracker.log_metric("validation_loss", run.val_loss, epoch)
                bar.set_postfix(
                    epoch=run.epoch,
                    loss=f"{train_loss:.3g}",
                    val=f"{run.val_loss:.3g}",
                    N=run.progress.num_points,
                )
                num_points = run.progress.num_points
                final_stage = num_points is not None and num_points > net.schedule.s1
                stop = run.stopping.update(
                    run.val_loss, net, final_stage, run.epoch, stop_after_epochs
                )
            duration = time.time() - start
            summary["epoch_durations_sec"].append(duration)
            tracker.log_metric(
                "epoch_durations_sec", duration, len(summary["epoch_durations_sec"])
            )
            if stop:
                break
        run.interrupted = False
    finally:
        bar.close()
        net.eval()
    best_state = run.stopping.weights_to_restore(run.val_loss)
    if best_state is not None:
        net.load_state_dict(best_state)


def train_epoch(
    run: Run,
    net: ConsistencyEstimator,
    batches: Iterable[Any],
    clip_max_norm: Optional[float],
    device: str,
    bar: Any = None,
) -> float:
    r"""One pass over the training batches of `run`, ending early at step `run.total_steps`.

    `run.progress` is updated after every optimizer step, so an interrupted pass leaves it at
    the last step taken; `run.epoch` is not (`run_epochs` counts the passes).

    Arguments:
        run: The run: its optimizer, initial learning rate, budget and progress.
        net: The estimator being trained.
        batches: Batches `(theta, x, mask)`.
        clip_max_norm: Largest total gradient norm; `None` for no clipping.
        device: Where the batches are moved.
        bar: Optional progress bar, advanced once per step.

    Returns:
        The mean training loss of the pass.

    Raises:
        RuntimeError: When the loss or the gradient is not finite; the weights are those
            of the last finite step.
    """
    progress, optimizer, epoch = run.progress, run.optimizer, run.epoch + 1
    loss_sum, count = 0.0, 0
    for theta, x, _ in batches:
        if progress.step >= run.total_steps:
            break
        theta, x = theta.to(device), x.to(device)
        warm = progress.step < run.warm_steps
        k, phase_steps = run.phase(progress.step)
        # The warm start draws from the final grid; its curriculum position stays at the
        # first stage, from which consistency training starts.
        num_points = net.schedule.num_points(0 if warm else k, phase_steps)
        # The curriculum never goes back, also when a resumed run changes K.
        num_points = max(num_points, progress.num_points or 0)
        lr = cosine_learning_rate(k, phase_steps, run.base_lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        losses = net.loss(theta, x, num_points=num_points, warm_start=warm)  # (B,)
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
