"""`CMPEInference`: sbi's trainer interface for consistency model posterior estimation."""

from __future__ import annotations

import math
import time
import warnings
from copy import deepcopy
from typing import Any, Literal, Optional, Sequence, Tuple, Union

import torch
from sbi.inference.trainers.base import NeuralInference
from sbi.sbi_types import Tracker
from sbi.utils.sbiutils import (
    ImproperEmpirical,
    mask_sims_from_prior,
)
from torch import Tensor
from torch.distributions import Distribution
from torch.utils.tensorboard.writer import SummaryWriter
from tqdm.auto import tqdm
from typing_extensions import Self

from sbi_cmpe.data import checked_simulations, indexed_batches, valid_simulations
from sbi_cmpe.estimator import ConsistencyEstimator
from sbi_cmpe.factory import consistency_nn
from sbi_cmpe.posterior import ConsistencyPosterior
from sbi_cmpe.schedule import (
    adam,
    default_learning_rate,
    default_num_steps,
    validation_interval,
)
from sbi_cmpe.training import Progress, train_epoch
from sbi_cmpe.validation import StoppingRule, energy_score

__all__ = ["CMPEInference"]


class CMPEInference(NeuralInference):
    r"""Consistency model posterior estimation (CMPE).

    Trains a consistency model of $p(\theta \mid x)$ on simulations from the prior
    with improved consistency training (Song and Dhariwal, 2023), and returns a
    `ConsistencyPosterior` that samples in a few network calls. It is a drop-in for
    sbi's `NPE`: `append_simulations`, `train` and `build_posterior` take sbi's
    arguments.

    Arguments:
        prior: Prior over $\theta$; `None` uses the empirical distribution of the
            simulated $\theta$ (as sbi's `FMPE`).
        density_estimator: `"mlp"`, `"ada_mlp"` or a builder
            `(batch_theta, batch_x) -> ConsistencyEstimator` such as one returned by
            `consistency_nn(...)`.
        device: Training device, e.g. `"cpu"` or `"cuda"`.
        logging_level: Minimum severity of messages to log.
        summary_writer: Deprecated alias of `tracker` (a TensorBoard writer).
        tracker: Where training metrics are logged; `None` logs to TensorBoard.
        show_progress_bars: Whether to show progress bars.

    References:
        | Consistency Models for Scalable and Fast Simulation-Based Inference
        | Schmitt, Pratz, Köthe, Bürkner and Radev, NeurIPS 2024
        | https://arxiv.org/abs/2312.05440

    Example:
        >>> import torch
        >>> from sbi.utils import BoxUniform
        >>> prior = BoxUniform(-2 * torch.ones(2), 2 * torch.ones(2))
        >>> theta = prior.sample((500,))
        >>> x = theta + 0.1 * torch.randn_like(theta)
        >>> inference = CMPEInference(prior, show_progress_bars=False)
        >>> _ = inference.append_simulations(theta, x).train(max_num_epochs=2)
        >>> posterior = inference.build_posterior()
        >>> posterior.sample((10,), x=torch.zeros(2)).shape
        torch.Size([10, 2])
    """

    def __init__(
        self,
        prior: Optional[Distribution] = None,
        density_estimator: Union[Literal["mlp", "ada_mlp"], Any] = "mlp",
        device: str = "cpu",
        logging_level: Union[int, str] = "WARNING",
        summary_writer: Optional[SummaryWriter] = None,
        tracker: Optional[Tracker] = None,
        show_progress_bars: bool = True,
    ) -> None:
        super().__init__(
            prior=prior,
            device=device,
            logging_level=logging_level,
            summary_writer=summary_writer,
            tracker=tracker,
            show_progress_bars=show_progress_bars,
        )
        if isinstance(density_estimator, str):
            self._build_neural_net = consistency_nn(model=density_estimator)
        elif callable(density_estimator):
            self._build_neural_net = density_estimator
        else:
            raise TypeError(
                "density_estimator must be 'mlp', 'ada_mlp' or a builder "
                f"(batch_theta, batch_x) -> ConsistencyEstimator, got {density_estimator!r}."
            )
        self._progress = Progress()

    @property
    def _step(self) -> int:
        """Optimizer steps taken so far (the curriculum position $k$)."""
        return self._progress.step

    @property
    def _num_points(self) -> Optional[int]:
        """Grid points $N(k)$ of the last step."""
        return self._progress.num_points

    # ------------------------------------------------------------------ data
    def append_simulations(
        self,
        theta: Tensor,
        x: Tensor,
        proposal: Optional[Any] = None,
        exclude_invalid_x: Optional[bool] = None,
        data_device: Optional[str] = None,
    ) -> Self:
        r"""Store simulations $(\theta, x)$ for training.

        Arguments:
            theta: Parameters of shape `(N, D)`, drawn from the prior.
            x: Simulations of shape `(N, *x_shape)`.
            proposal: Must be `None` or the prior: CMPE is single-round, and training
                on $\theta$ from another proposal would silently give a biased
                posterior.
            exclude_invalid_x: Whether simulations with NaN or infinite entries are
                dropped (with a warning that counts them). `None` means `True`.
            data_device: Where the data are stored; `None` uses the training device.

        Returns:
            The trainer itself, for chaining.
        """
        if proposal is not None and proposal is not self._prior:
            raise ValueError(
                "CMPEInference is single-round: theta must be drawn from the prior, but a "
                f"different proposal ({type(proposal).__name__}) was passed. Pass "
                "proposal=None, or use sbi's NPE for sequential inference."
            )
        prior = None if isinstance(self._prior, ImproperEmpirical) else self._prior
        theta, x = checked_simulations(
            theta,
            x,
            prior=prior,
            earlier=(self._theta_roundwise[0], self._x_roundwise[0])
            if self._theta_roundwise
            else None,
        )
        exclude = True if exclude_invalid_x is None else exclude_invalid_x
        theta, x = valid_simulations(
            theta, x, exclude_invalid_x=exclude, prior=prior, prior_device=self._device
        )
        data_device = self._device if data_device is None else data_device
        self._theta_roundwise.append(theta.to(data_device))
        self._x_roundwise.append(x.to(data_device))
        self._prior_masks.append(mask_sims_from_prior(0, theta.shape[0]).to(data_device))
        self._data_round_index.append(0)
        if self._prior is None or isinstance(self._prior, ImproperEmpirical):
            theta_all = self.get_simulations()[0].to(self._device)
            self._prior = ImproperEmpirical(
                theta_all, torch.ones(len(theta_all), device=self._device)
            )
        return self

    # -------------------------------------------------------------- training
    def train(
        self,
        training_batch_size: int = 128,
        learning_rate: Optional[float] = None,
        validation_fraction: float = 0.1,
        stop_after_epochs: int = 20,
        max_num_epochs: Optional[int] = None,
        clip_max_norm: Optional[float] = 5.0,
        resume_training: bool = False,
        retrain_from_scratch: bool = False,
        show_train_summary: bool = False,
        dataloader_kwargs: Optional[dict] = None,
    ) -> ConsistencyEstimator:
        r"""Train the consistency model and return it.

        The run has a fixed budget of $K$ optimizer steps: `max_num_epochs` times the
        batches per epoch, or, when `max_num_epochs` is `None`, whole epochs of about
        20,000 steps for parameters of up to 3 dimensions and above that 5 per
        simulation, at most 20,000 up to 5 dimensions and 10,000 above, rounded up to whole
        epochs (see `default_num_steps`).
        Both the iCT curriculum $N(k)$ and the cosine decay of the learning rate (Adam,
        from `learning_rate` to 0) follow the optimizer step $k$ over this $K$, so the
        finest grid ($s_1$ intervals) is reached in the last steps that really run.

        Stopping (see `sbi_cmpe.validation` for the why): the validation score is the
        energy score of posterior draws at the held-out simulations, computed after each
        epoch that ends at least 100 optimizer steps after the last validation and after
        the last epoch. The run ends with its final weights unless the score is more
        than 10% worse than its best; then the best weights come back. In the last
        curriculum stage each such degraded validation adds the epochs since the previous
        one (any other resets the count), and training stops when the count reaches
        `stop_after_epochs`.

        Arguments:
            training_batch_size: Batch size.
            learning_rate: Initial learning rate of Adam; `None` for 1e-3 with up to 5
                parameters and 5e-4 above (see `default_learning_rate`). A resumed run
                keeps the rate of the run it continues.
            validation_fraction: Fraction of simulations held out for validation.
            stop_after_epochs: Patience of the stopping rule, in epochs of the last
                curriculum stage (see above).
            max_num_epochs: Epochs of the run (the budget); `None` for about 20,000
                optimizer steps (up to 3 parameters), else 5 per simulation, at most
                20,000 (up to 5 parameters) or 10,000.
            clip_max_norm: Largest total gradient norm (positive); `None` for no clipping.
            resume_training: Continue the previous run (same split, optimizer,
                optimizer step and curriculum position) up to `max_num_epochs`.
            retrain_from_scratch: Build a new network instead of continuing.
            show_train_summary: Print epochs and validation loss at the end.
            dataloader_kwargs: Passed to the training `DataLoader`.

        Returns:
            The trained `ConsistencyEstimator`.
        """
        if not self._theta_roundwise:
            raise RuntimeError("No simulations: call `append_simulations(theta, x)` first.")
        if resume_training and self._neural_net is None:
            raise RuntimeError("resume_training=True needs an earlier call of `train()`.")
        if clip_max_norm is not None and not clip_max_norm > 0:
            raise ValueError(f"clip_max_norm must be positive or None, got {clip_max_norm}.")
        num_sims = self.get_simulations()[0].shape[0]
        num_train = int((1 - validation_fraction) * num_sims)
        if num_train < 1 or num_sims - num_train < 1:
            raise ValueError(
                f"{num_sims} simulations with validation_fraction={validation_fraction} "
                "leave no training or no validation data."
            )
        train_loader, _ = self.get_dataloaders(
            0, training_batch_size, validation_fraction, resume_training, dataloader_kwargs
        )
        if dataloader_kwargs is None:  # the same batches, without row-by-row collation
            train_loader = indexed_batches(train_loader)
        if retrain_from_scratch or self._neural_net is None:
            self._initialize_neural_network(retrain_from_scratch=True, start_idx=0)
        net = self._neural_net.to(self._device)

        batches = len(train_loader)
        if max_num_epochs is None:
            # The simulations of the split: a resumed run keeps its split and its budget.
            split = len(self.train_indices) + len(self.val_indices)
            num_steps = default_num_steps(net.input_shape.numel(), split)
            max_num_epochs = max(1, math.ceil(num_steps / batches))
        total_steps = max_num_epochs * batches
        if resume_training and learning_rate is not None:
            warnings.warn(
                f"learning_rate={learning_rate} is ignored: resume_training=True continues "
                f"the previous run with its learning rate ({self._base_lr}), as in sbi.",
                stacklevel=2,
            )
        if not resume_training:
            if learning_rate is None:
                learning_rate = default_learning_rate(net.input_shape.numel())
            self._base_lr = learning_rate
            self.optimizer = adam(net.parameters(), learning_rate, self._device)
            self.epoch, self._progress = 0, Progress()
            self._stopping = StoppingRule()
        self._total_steps = total_steps
        val_theta, val_x = self._validation_data()

        bar = tqdm(
            total=total_steps,
            initial=min(self._step, total_steps),
            disable=not self._show_progress_bars,
            desc="Training CMPE",
            unit="step",
        )
        self._interrupted = True  # until the loop ends normally
        self._stopping.every = validation_interval(batches)
        try:
            while self._step < total_steps:
                start = time.time()
                net.train()
                train_loss = train_epoch(
                    net,
                    self.optimizer,
                    train_loader,
                    self._progress,
                    total_steps,
                    self._base_lr,
                    clip_max_norm,
                    self._device,
                    self.epoch + 1,
                    bar,
                )
                self.epoch += 1
                self._summary["training_loss"].append(train_loss)
                self._tracker.log_metric("num_discretization_points", self._num_points, self.epoch)
                lr = self.optimizer.param_groups[0]["lr"]
                self._tracker.log_metric("learning_rate", lr, self.epoch)
                net.eval()
                if self._stopping.due(self.epoch, last=self._step >= total_steps):
                    self._val_loss = self._validation_loss(val_theta, val_x)
                    self._summary["validation_loss"].append(self._val_loss)
                    self._tracker.log_metric("validation_loss", self._val_loss, self.epoch)
                    bar.set_postfix(
                        epoch=self.epoch,
                        loss=f"{train_loss:.3g}",
                        val=f"{self._val_loss:.3g}",
                        N=self._num_points,
                    )
                    final_stage = self._num_points is not None and self._num_points > net.s1
                    if self._stopping.update(
                        self._val_loss, net, final_stage, self.epoch, stop_after_epochs
                    ):
                        self._summary["epoch_durations_sec"].append(time.time() - start)
                        break
                self._summary["epoch_durations_sec"].append(time.time() - start)
            self._interrupted = False
        except KeyboardInterrupt:
            net.eval()
            warnings.warn(
                f"Training interrupted at optimizer step {self._step} of {total_steps} "
                f"(epoch {self.epoch + 1}). The estimator keeps its weights; continue with "
                f"train(resume_training=True, max_num_epochs={max_num_epochs}).",
                stacklevel=2,
            )
            raise
        finally:
            bar.close()
        best_state = self._stopping.weights_to_restore(self._val_loss)
        if best_state is not None:
            net.load_state_dict(best_state)

        self._summary["epochs_trained"].append(self.epoch)
        self._summary["best_validation_loss"].append(self._stopping.best_score)
        self._summarize(round_=self._round)
        if show_train_summary:
            print(self._describe_round(self._round, self._summary))
        net.zero_grad(set_to_none=True)
        net.eval()
        return net

    def _summarize(self, round_: int) -> None:
        """Write the run's statistics to the tracker.

        sbi's version assumes one validation score per epoch; here the scores are logged
        at their epochs during training, so only the per-epoch statistics not logged yet
        are written.
        """
        tracker = self._tracker
        tracker.log_metric("epochs_trained", self._summary["epochs_trained"][-1], round_ + 1)
        tracker.log_metric(
            "best_validation_loss", self._summary["best_validation_loss"][-1], round_ + 1
        )
        start = getattr(self, "_logged_epochs", 0)
        for name in ("training_loss", "epoch_durations_sec"):
            for epoch, value in enumerate(self._summary[name][start:], start=start + 1):
                tracker.log_metric(name, value, epoch)
        self._logged_epochs = len(self._summary["training_loss"])
        tracker.flush()

    def _validation_data(self) -> Tuple[Tensor, Tensor]:
        theta, x, _ = self.get_simulations()
        return theta[self.val_indices], x[self.val_indices]

    def _validation_loss(self, theta: Tensor, x: Tensor) -> float:
        """Energy score of posterior draws at the held-out simulations (fixed noise)."""
        return energy_score(self._neural_net, theta, x)

    def _initialize_neural_network(self, retrain_from_scratch: bool, start_idx: int) -> None:
        """Build the network on CPU from the training split (z-scoring statistics)."""
        theta, x, _ = self.get_simulations(start_idx)
        idx = self.train_indices
        if self._build_neural_net is None:
            raise RuntimeError(
                "This trainer was unpickled and has no network builder: pass "
                "retrain_from_scratch=False or build a new CMPEInference."
            )
        self._neural_net = self._build_neural_net(theta[idx].to("cpu"), x[idx].to("cpu"))
        if not isinstance(self._neural_net, ConsistencyEstimator):
            raise TypeError(
                "The density_estimator builder must return a ConsistencyEstimator, got "
                f"{type(self._neural_net).__name__}."
            )
        self._x_shape = x.shape[1:]
        self._neural_net.to(self._device)

    # ------------------------------------------------------------- posterior
    def build_posterior(
        self,
        estimator: Optional[ConsistencyEstimator] = None,
        prior: Optional[Distribution] = None,
        num_steps: Optional[int] = None,
        max_sampling_batch_size: Optional[int] = None,
        **kwargs: Any,
    ) -> ConsistencyPosterior:
        r"""Build a `ConsistencyPosterior` from the trained (or a given) estimator.

        Arguments:
            estimator: A trained `ConsistencyEstimator`; `None` uses the last trained.
            prior: Prior for the support; `None` uses the trainer's.
            num_steps: Default number of sampling steps; `None` uses the estimator's.
            max_sampling_batch_size: Largest number of draws per network call; `None` for
                2,048 on a CPU and 10,000 on other devices.
            **kwargs: sbi's `sample_with` is accepted only as `"direct"`.

        Returns:
            The posterior.
        """
        sample_with = kwargs.pop("sample_with", "direct")
        if sample_with != "direct" or kwargs:
            raise ValueError(
                "CMPE posteriors sample directly; unsupported arguments: "
                f"{dict(kwargs, sample_with=sample_with) if sample_with != 'direct' else kwargs}."
            )
        prior = self._prior if prior is None else prior
        if prior is None:
            raise ValueError("No prior: pass `prior=` or give one to CMPEInference.")
        if estimator is None:
            if self._neural_net is None:
                raise RuntimeError("No trained estimator: call `train()` first.")
            estimator = self._neural_net
            if getattr(self, "_interrupted", False):
                warnings.warn(
                    f"The estimator was trained for {self._step} of {self._total_steps} "
                    "optimizer steps (training was interrupted); continue it with "
                    "train(resume_training=True) for the full budget.",
                    stacklevel=2,
                )
        self._posterior = ConsistencyPosterior(
            estimator,
            prior,
            num_steps=num_steps,
            max_sampling_batch_size=max_sampling_batch_size,
            device=self._device,
        )
        return deepcopy(self._posterior)

    # --------------------------------------------- sbi's abstract interface
    def _get_start_index(self, context: Any) -> int:
        return 0

    def _loss(self, theta: Tensor, x: Tensor, num_points: Optional[int] = None) -> Tensor:
        return self._neural_net.loss(theta, x, num_points=num_points)

    def _get_losses(self, batch: Sequence[Tensor], loss_args: Any = None) -> Tensor:
        return self._loss(batch[0].to(self._device), batch[1].to(self._device))

    def _get_potential_function(self, prior: Distribution, estimator: Any) -> Any:
        raise NotImplementedError(
            "CMPE has no potential function: its posterior can be sampled, not evaluated."
        )
