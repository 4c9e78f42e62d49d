"""`CMPEInference`: sbi's trainer interface for consistency model posterior estimation."""

from __future__ import annotations

import warnings
from copy import deepcopy
from typing import Any, Callable, Literal, Optional, Sequence, Tuple, Union

import torch
from sbi.inference.potentials.posterior_based_potential import (
    posterior_estimator_based_potential,
)
from sbi.inference.trainers.base import NeuralInference
from sbi.sbi_types import Tracker
from sbi.utils.sbiutils import ImproperEmpirical, mask_sims_from_prior
from torch import Tensor
from torch.distributions import Distribution
from torch.utils.tensorboard.writer import SummaryWriter
from typing_extensions import Self

from sbi_cmpe import arguments
from sbi_cmpe.data import (
    check_finite,
    check_loader_arguments,
    check_proposal,
    check_split,
    checked_simulations,
    covers_all,
    indexed_batches,
    valid_simulations,
)
from sbi_cmpe.defaults import default_warm_start
from sbi_cmpe.estimator import UNCHOSEN_STEPS, ConsistencyEstimator
from sbi_cmpe.factory import consistency_nn
from sbi_cmpe.posterior import ConsistencyPosterior
from sbi_cmpe.sbi_options import check_train_options, posterior_options
from sbi_cmpe.training_loop import Run, start_run
from sbi_cmpe.training_round import train_round
from sbi_cmpe.validation import energy_score

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

    # The training run, kept for resume_training; a class default so that trainers pickled
    # before it existed load (without a run to resume).
    _run: Optional[Run] = None

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
        self._run = None

    @property
    def optimizer_steps(self) -> int:
        """Optimizer steps taken so far (the curriculum position $k$)."""
        return 0 if self._run is None else self._run.progress.step

    @property
    def num_discretization_points(self) -> Optional[int]:
        """Grid points $N(k)$ of the curriculum at the last step; `None` before training."""
        return None if self._run is None else self._run.progress.num_points

    @property
    def epoch(self) -> int:
        """Epochs trained so far."""
        return 0 if self._run is None else self._run.epoch

    @property
    def optimizer(self) -> Optional[torch.optim.Optimizer]:
        """The optimizer of the training run; `None` before `train()`."""
        return None if self._run is None else self._run.optimizer

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
            proposal: `None`, the prior, or a truncated prior (sbi's `RestrictedPrior` of
                this prior, as in truncated sequential rounds, TSNPE): on its support it is
                the prior up to a constant, so the loss needs no correction. Any other
                proposal (e.g. a posterior) would need one and is refused.
            exclude_invalid_x: Whether simulations with NaN or infinite entries are
                dropped (with a warning that counts them). `None` means `True`.
            data_device: Where the data are stored; `None` uses the training device.

        Returns:
            The trainer itself, for chaining.
        """
        check_proposal(proposal, self._prior)
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
        calibration_kernel: Optional[Callable] = None,
        resume_training: bool = False,
        force_first_round_loss: bool = False,
        discard_prior_samples: bool = False,
        retrain_from_scratch: bool = False,
        show_train_summary: bool = False,
        dataloader_kwargs: Optional[dict] = None,
        *,
        warm_start: Optional[float] = None,
    ) -> ConsistencyEstimator:
        r"""Train the consistency model and return it.

        The run has a fixed budget of $K$ optimizer steps: `max_num_epochs` times the
        batches per epoch, or, when `max_num_epochs` is `None`, `default_num_steps` (which
        depends on the number of parameters and simulations) rounded up to whole epochs.
        Both the iCT curriculum $N(k)$ and the cosine decay of the learning rate (Adam,
        from `learning_rate` to 0) follow the optimizer step $k$ over this $K$, so the
        finest grid ($s_1$ intervals) is reached in the last steps that really run; after a
        warm start they follow the steps after it (`sbi_cmpe.training_loop.Run.phase`).

        Stopping (`sbi_cmpe.training_loop.run_epochs`; the why in `sbi_cmpe.validation`): the
        validation score is the energy score of posterior draws at the held-out
        simulations, computed after epochs at least 100 optimizer steps apart and after the
        last epoch. The run keeps its final weights unless that score ends more than 10%
        above its best, and stops early when it stays degraded for `stop_after_epochs` epochs
        of the last curriculum stage (a score that is not degraded resets the count).

        The arguments are those of sbi's posterior trainers (`NPE.train` without NPE-C's
        `num_atoms` and `use_combined_loss`), in their order, and `warm_start` by keyword. A
        later call without `retrain_from_scratch` continues the network in a new run: on a
        new split of all simulations when new ones were appended (from the prior or a
        truncated prior, which need no loss correction) or `validation_fraction` changed, on
        the same split otherwise, so that no simulation it trained on is held out.
        `summary["validation_loss"]` has one score per validation, and
        `summary["validation_epochs"]` the epochs they follow.

        Arguments:
            training_batch_size: Batch size.
            learning_rate: Initial learning rate of Adam; `None` for 1e-3 with up to 5
                parameters and 5e-4 above (see `default_learning_rate`). A resumed run
                keeps the rate of the run it continues.
            validation_fraction: Fraction of simulations held out for validation.
            stop_after_epochs: Patience of the stopping rule, in epochs (see above).
            max_num_epochs: Epochs of the run (the budget); `None` for the default budget
                (see above).
            clip_max_norm: Largest total gradient norm (positive); `None` for no clipping.
            calibration_kernel: Only `None`: every simulation has weight 1.
            resume_training: Continue the previous run (same split, optimizer,
                optimizer step and curriculum position) up to `max_num_epochs`.
            force_first_round_loss: Accepted for sbi's truncated-rounds recipe; CMPE's loss
                is always the first round's, which prior and truncated-prior proposals (the
                only ones `append_simulations` takes) need.
            discard_prior_samples: Only `False`: every round's simulations are used.
            retrain_from_scratch: Build a new network instead of continuing.
            show_train_summary: Print epochs and validation loss at the end.
            dataloader_kwargs: Passed to the training `DataLoader`.
            warm_start: Fraction in `[0, 1)` of the run's first optimizer steps that train the
                consistency function as a denoiser (`consistency.consistency_teacher`), with
                their own cosine decay; `None`: `default_warm_start` on a new network, none on
                a continued one; 0 for none. A resumed run keeps its warm start.

        Returns:
            The trained `ConsistencyEstimator`.
        """
        if not self._theta_roundwise:
            raise RuntimeError("No simulations: call `append_simulations(theta, x)` first.")
        if resume_training and (self._neural_net is None or self._run is None):
            raise RuntimeError("resume_training=True needs an earlier call of `train()`.")
        if resume_training and retrain_from_scratch:
            raise ValueError("Pass resume_training=True or retrain_from_scratch=True, not both.")
        check_train_options(calibration_kernel, discard_prior_samples)
        _, x_all, _ = self.get_simulations()
        check_finite(x_all)
        num = len(x_all)
        training_batch_size = arguments.positive_int("training_batch_size", training_batch_size)
        learning_rate = arguments.positive_float("learning_rate", learning_rate, allow_none=True)
        validation_fraction = arguments.open_fraction("validation_fraction", validation_fraction)
        stop_after_epochs = arguments.positive_int("stop_after_epochs", stop_after_epochs)
        max_num_epochs = arguments.positive_int("max_num_epochs", max_num_epochs, allow_none=True)
        clip_max_norm = arguments.positive_float("clip_max_norm", clip_max_norm, allow_none=True)
        warm_start = arguments.fraction("warm_start", warm_start, allow_none=True)
        check_loader_arguments(dataloader_kwargs)
        check_split(num, validation_fraction)
        new_network = retrain_from_scratch or self._neural_net is None
        # A network continued on the same simulations keeps its split (one of all of them),
        # so that none it trained on is held out; new simulations need a new one.
        split = (getattr(self, "train_indices", ()), getattr(self, "val_indices", ()))
        keep_split = resume_training or (
            not new_network and covers_all(*split, num, validation_fraction)
        )
        train_loader, _ = self.get_dataloaders(
            0, training_batch_size, validation_fraction, keep_split, dataloader_kwargs
        )
        if dataloader_kwargs is None:  # the same batches, without row-by-row collation
            train_loader = indexed_batches(train_loader)
        if new_network:
            self._initialize_neural_network(retrain_from_scratch=True, start_idx=0)
        net = self._neural_net.to(self._device)
        if warm_start is None and not resume_training:  # the default: on new networks only
            warm_start = default_warm_start(net.input_shape.numel()) if new_network else 0.0

        # The simulations of the split: a resumed run keeps its split and its budget.
        split = len(self.train_indices) + len(self.val_indices)
        resumed = self._run if resume_training else None
        run, max_num_epochs = start_run(
            net, len(train_loader), split, max_num_epochs, learning_rate, resumed, warm_start
        )
        self._run = run
        val_theta, val_x = self._validation_data()
        train_round(
            run,
            net,
            train_loader,
            val_theta,
            val_x,
            validate=lambda: self._validation_loss(val_theta, val_x),
            max_num_epochs=max_num_epochs,
            round_=self._round,
            clip_max_norm=clip_max_norm,
            stop_after_epochs=stop_after_epochs,
            device=self._device,
            summary=self._summary,
            tracker=self._tracker,
            show_progress=self._show_progress_bars,
        )
        if show_train_summary:
            print(self._describe_round(self._round, self._summary))
        net.zero_grad(set_to_none=True)
        net.eval()
        return net

    def _validation_data(self) -> Tuple[Tensor, Tensor]:
        theta, x, _ = self.get_simulations()
        return theta[self.val_indices], x[self.val_indices]

    def _validation_loss(self, theta: Tensor, x: Tensor) -> float:
        """Energy score of posterior draws at the held-out simulations (fixed noise), in
        `UNCHOSEN_STEPS` steps where training chooses the steps."""
        net = self._neural_net
        return energy_score(net, theta, x, num_steps=UNCHOSEN_STEPS if net.auto_steps else None)

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
        sample_with: str = "direct",
        *,
        num_steps: Union[int, Literal["auto"], None] = "auto",
        max_sampling_batch_size: Optional[int] = None,
        density_estimator: Optional[ConsistencyEstimator] = None,
        direct_sampling_parameters: Optional[dict] = None,
        **kwargs: Any,
    ) -> ConsistencyPosterior:
        r"""Build a `ConsistencyPosterior` from the trained (or a given) estimator.

        The positional arguments are those of sbi's `NPE.build_posterior`; the others are
        given by keyword.

        Arguments:
            estimator: A trained `ConsistencyEstimator`; `None` uses the last trained.
            prior: Prior for the support; `None` uses the trainer's.
            sample_with: Only `"direct"`: CMPE samples its own network.
            num_steps: Default number of sampling steps; `"auto"` (or `None`) uses the
                estimator's, which training chose (`sbi_cmpe.steps`) unless the estimator
                was built with a number.
            max_sampling_batch_size: Largest number of draws per network call; `None` for
                2,048 on a CPU and 10,000 on other devices.
            density_estimator: sbi's name of `estimator`.
            direct_sampling_parameters: sbi's keywords of the posterior; only
                `max_sampling_batch_size`.
            **kwargs: sbi's other samplers' arguments, refused with an error.

        Returns:
            The posterior.
        """
        estimator, max_sampling_batch_size = posterior_options(
            estimator,
            sample_with,
            max_sampling_batch_size,
            density_estimator,
            direct_sampling_parameters,
            kwargs,
        )
        prior = self._prior if prior is None else prior
        if prior is None:
            raise ValueError("No prior: pass `prior=` or give one to CMPEInference.")
        if estimator is None:
            if self._neural_net is None:
                raise RuntimeError("No trained estimator: call `train()` first.")
            estimator = self._neural_net
            if self._run is not None and self._run.interrupted:
                warnings.warn(
                    f"The estimator was trained for {self.optimizer_steps} of "
                    f"{self._run.total_steps} optimizer steps (training was interrupted); "
                    "continue it with train(resume_training=True) for the full budget.",
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
        if not getattr(estimator, "density", False):
            raise NotImplementedError(
                "This CMPE estimator has no density head: train with "
                "consistency_nn(density=True) for a potential function."
            )
        return posterior_estimator_based_potential(estimator, prior, x_o=None)
