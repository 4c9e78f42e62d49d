"""The methods compared: CMPE and sbi's NPE (maf, nsf), FMPE and NPSE at their defaults."""

from __future__ import annotations

import ast
import inspect
import time
from dataclasses import dataclass, field, fields
from typing import Any, Dict, Optional

from sbi.inference import FMPE, NPE, NPSE
from sbi.neural_nets import posterior_flow_nn, posterior_nn, posterior_score_nn
from torch import Tensor
from torch.distributions import Distribution

from sbi_cmpe import CMPEInference, NoiseSchedule, consistency_nn
from sbi_cmpe.benchmark.tasks import EmbeddingFactory
from sbi_cmpe.defaults import default_schedule

__all__ = ["METHODS", "Trained", "train_method"]


@dataclass
class Trained:
    """A trained posterior with what its training cost."""

    posterior: Any
    train_time_s: float
    epochs: int
    optimizer_steps: int
    calls_per_draw: Optional[int]  # network calls per draw, where known
    sample_kwargs: Dict[str, Any] = field(default_factory=dict)


def parse_variant(method: str) -> tuple[str, Dict[str, Any]]:
    """Split `"cmpe:hidden_features=128,steps=5000"` into `("cmpe", {...})`.

    Values are parsed as Python literals where they can be (`128`, `1e-3`, `"mlp"`).
    """
    name, _, spec = method.partition(":")
    options: Dict[str, Any] = {}
    for item in filter(None, spec.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"Option {item!r} of {method!r} is not key=value.")
        try:
            options[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key] = value
    if options and name != "cmpe":
        raise ValueError(f"Only CMPE takes options (baselines run at sbi's defaults): {method!r}.")
    return name, options


def _cmpe(
    prior: Distribution,
    options: Dict[str, Any],
    num_sims: int,
    embedding: Optional[EmbeddingFactory] = None,
    device: str = "cpu",
) -> tuple:
    """A CMPE trainer and its `train` keywords from variant options.

    Options are keywords of `consistency_nn`, of `CMPEInference.train`, fields of
    `NoiseSchedule` (which change `default_schedule` of the task's dimension) and `steps`.
    `embedding` builds the embedding net of x (then not z-scored); `device` is where the
    network trains.
    """
    build_keys = set(inspect.signature(consistency_nn).parameters) - {"kwargs", "schedule"}
    train_keys = set(inspect.signature(CMPEInference.train).parameters) - {"self"}
    schedule_keys = {f.name for f in fields(NoiseSchedule)}
    unknown = set(options) - build_keys - train_keys - schedule_keys - {"steps"}
    if unknown:
        raise ValueError(f"Unknown CMPE options {sorted(unknown)}.")
    build = {k: v for k, v in options.items() if k in build_keys}
    if embedding is not None:
        build = dict(embedding_net=embedding(), z_score_x="none") | build
    train = {k: v for k, v in options.items() if k in train_keys}
    changes = {k: v for k, v in options.items() if k in schedule_keys}
    if "steps" in options:  # a budget in optimizer steps, as whole epochs
        batch = train.get("training_batch_size", 128)
        per_epoch = max(1, int(0.9 * num_sims) // batch)
        train["max_num_epochs"] = max(1, -(-options["steps"] // per_epoch))
    estimator: Any = consistency_nn(**build) if build else "mlp"
    if changes:

        def estimator(batch_theta: Tensor, batch_x: Tensor) -> Any:
            schedule = default_schedule(batch_theta[0].numel(), **changes)
            return consistency_nn(**build, schedule=schedule)(batch_theta, batch_x)

    trainer = CMPEInference(
        prior, density_estimator=estimator, device=device, show_progress_bars=False
    )
    return trainer, train


def _trainer(
    method: str,
    prior: Distribution,
    embedding: Optional[EmbeddingFactory] = None,
    device: str = "cpu",
) -> Any:
    """An sbi trainer at its defaults on `device`, its network with `embedding`'s net of x
    if given.

    With an embedding, x is not z-scored and the network is otherwise at the builder's
    defaults.
    """
    quiet: Dict[str, Any] = dict(show_progress_bars=False, device=device)
    net = {} if embedding is None else dict(embedding_net=embedding(), z_score_x="none")
    if method in ("npe_maf", "npe_nsf"):
        model = method[4:]
        estimator = posterior_nn(model, **net) if net else model
        return NPE(prior, density_estimator=estimator, **quiet)
    if method == "fmpe":
        flow = posterior_flow_nn("mlp", **net) if net else "mlp"
        return FMPE(prior, vf_estimator=flow, **quiet)
    if method == "npse":
        score = posterior_score_nn("mlp", **net) if net else "mlp"
        return NPSE(prior, vf_estimator=score, **quiet)
    raise ValueError(f"Unknown method {method!r}; choose from {sorted(METHODS)}.")


METHODS = ("cmpe", "npe_maf", "npe_nsf", "fmpe", "npse")


def train_method(
    method: str,
    prior: Distribution,
    theta: Tensor,
    x: Tensor,
    max_num_epochs: Optional[int] = None,
    embedding: Optional[EmbeddingFactory] = None,
    device: str = "cpu",
) -> Trained:
    """Train `method` on `(theta, x)` with sbi's (or our) default settings.

    Arguments:
        method: One of `METHODS`, or a CMPE variant such as
            `"cmpe:hidden_features=128,steps=5000"` (options of `consistency_nn` and
            `CMPEInference.train`, and `steps`, a budget in optimizer steps).
        prior: The task's prior.
        theta: Parameters `(N, D)`.
        x: Simulations `(N, *x_shape)`.
        max_num_epochs: Cap on epochs (for smoke runs); `None` keeps the defaults.
        embedding: Builds the embedding net of x that the method's network gets (x is then
            not z-scored); `None` for the defaults.
        device: Where the network trains (`"cpu"`, `"cuda"`); the prior must be there too,
            as sbi's trainers ask.

    Returns:
        The trained posterior and its cost.
    """
    name, options = parse_variant(method)
    if name == "cmpe":
        trainer, kwargs = _cmpe(prior, options, len(theta), embedding, device)
    else:
        trainer, kwargs = _trainer(name, prior, embedding, device), {}
    if max_num_epochs is not None:
        kwargs["max_num_epochs"] = max_num_epochs
    trainer.append_simulations(theta, x)
    start = time.perf_counter()
    trainer.train(**kwargs)
    seconds = time.perf_counter() - start
    epochs = trainer.summary["epochs_trained"][-1]
    if name == "cmpe":
        steps = trainer.optimizer_steps
    else:
        batch = 200  # sbi's default training_batch_size
        steps = epochs * (len(trainer.train_indices) // batch or 1)
    posterior = trainer.build_posterior()
    calls = posterior.num_steps if name == "cmpe" else (1 if name.startswith("npe") else None)
    return Trained(posterior, seconds, int(epochs), int(steps), calls)
