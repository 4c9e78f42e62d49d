"""One call of `CMPEInference.train` (a round): the run's epochs (`sbi_cmpe.training_loop`),
then its close: sbi's per-round statistics and, where the estimator chooses its own number of
sampling steps, that choice on the held-out simulations (`sbi_cmpe.steps`)."""

from __future__ import annotations

import warnings
from typing import Any, Callable, Dict, Iterable, List, Optional

import torch
from sbi.sbi_types import Tracker

from sbi_cmpe.estimator import ConsistencyEstimator
from sbi_cmpe.steps import choose_num_steps
from sbi_cmpe.training_loop import Run, run_epochs

__all__ = ["close_round", "train_round"]


def close_round(
    run: Run,
    net: ConsistencyEstimator,
    val_theta: torch.Tensor,
    val_x: torch.Tensor,
    epoch: int,
    round_: int,
    summary: Dict[str, List],
    tracker: Tracker,
) -> None:
    """A round's end: its statistics in sbi's summary and tracker, and, when the estimator
    chooses its own sampling steps, that choice on the held-out simulations.

    Arguments:
        run: The finished run.
        net: The trained estimator (its `num_steps` and `step_choice` are set here).
        val_theta: Held-out parameters `(V, *theta_shape)`.
        val_x: Held-out simulations `(V, *x_shape)`.
        epoch: Epochs trained so far.
        round_: The round (0-based; the tracker logs `round_ + 1`, as sbi).
        summary: sbi's training summary, appended to.
        tracker: sbi's tracker.
    """
    summary["epochs_trained"].append(epoch)
    summary["best_validation_loss"].append(run.stopping.best_score)
    # sbi's per-round statistics (the per-epoch ones were logged as the epochs ran).
    tracker.log_metric("epochs_trained", epoch, round_ + 1)
    tracker.log_metric("best_validation_loss", run.stopping.best_score, round_ + 1)
    if net.auto_steps:
        net.eval()
        net.step_choice = choose_num_steps(net, val_theta, val_x)
        net.num_steps = net.step_choice.num_steps
        summary.setdefault("num_steps", []).append(net.num_steps)
        tracker.log_metric("num_steps", net.num_steps, round_ + 1)
    tracker.flush()


def train_round(
    run: Run,
    net: ConsistencyEstimator,
    batches: Iterable[Any],
    val_theta: torch.Tensor,
    val_x: torch.Tensor,
    *,
    validate: Callable[[], float],
    max_num_epochs: int,
    round_: int,
    clip_max_norm: Optional[float],
    stop_after_epochs: int,
    device: str,
    summary: Dict[str, List],
    tracker: Tracker,
    show_progress: bool = False,
) -> None:
    """One call of `CMPEInference.train`: `run_epochs`, then `close_round`.

    An interruption (`KeyboardInterrupt`) warns how to continue the run
    (`train(resume_training=True, max_num_epochs=max_num_epochs)`) and propagates; the round
    is then not closed.

    Arguments:
        run: The run (from `start_run`).
        net: The estimator.
        batches: The training batches of one epoch.
        val_theta: Held-out parameters `(V, *theta_shape)`.
        val_x: Held-out simulations `(V, *x_shape)`.
        validate: The validation score of `net`.
        max_num_epochs: The call's budget in epochs (named in the warning).
        round_: The round (0-based).
        clip_max_norm: Largest total gradient norm; `None` for no clipping.
        stop_after_epochs: Patience of the stopping rule, in epochs.
        device: The training device.
        summary: sbi's training summary.
        tracker: sbi's tracker.
        show_progress: Whether to show a progress bar.
    """
    try:
        run_epochs(
            run,
            net,
            batches,
            validate=validate,
            clip_max_norm=clip_max_norm,
            stop_after_epochs=stop_after_epochs,
            device=device,
            summary=summary,
            tracker=tracker,
            show_progress=show_progress,
        )
    except KeyboardInterrupt:
        warnings.warn(
            f"Training interrupted at optimizer step {run.progress.step} of "
            f"{run.total_steps} (epoch {run.epoch + 1}). The estimator keeps its "
            f"weights; continue with train(resume_training=True, "
            f"max_num_epochs={max_num_epochs}).",
            stacklevel=3,
        )
        raise
    close_round(run, net, val_theta, val_x, run.epoch, round_, summary, tracker)
