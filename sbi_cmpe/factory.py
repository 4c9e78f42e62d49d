"""`consistency_nn`: the builder of consistency estimators, like sbi's `posterior_flow_nn`."""

from __future__ import annotations

import warnings
from dataclasses import fields
from typing import Callable, Literal, Optional, Union

import torch
from sbi.neural_nets.net_builders.vector_field_nets import (
    build_adamlp_network,
    build_standard_mlp_network,
)
from sbi.utils.sbiutils import standardizing_net, z_score_parser, z_standardization
from torch import Tensor, nn

from sbi_cmpe import arguments
from sbi_cmpe.defaults import default_schedule
from sbi_cmpe.estimator import ConsistencyEstimator
from sbi_cmpe.schedule import NoiseSchedule
from sbi_cmpe.standardize import MAX_REGRESSORS, SIMULATIONS_PER_REGRESSOR, linear_z_score

__all__ = ["consistency_nn"]

_NETWORKS = {"mlp": build_standard_mlp_network, "ada_mlp": build_adamlp_network}
_Z_SCORING = (None, "none", "independent", "structured")
_Z_SCORING_THETA = (*_Z_SCORING, "linear")
ZScoreTheta = Literal["independent", "structured", "linear", "none"]


def consistency_nn(
    model: Literal["mlp", "ada_mlp"] = "mlp",
    hidden_features: int = 128,
    num_layers: int = 3,
    time_embedding_dim: int = 32,
    embedding_net: Optional[nn.Module] = None,
    z_score_theta: Optional[ZScoreTheta] = "independent",
    z_score_x: Optional[Literal["independent", "structured", "none"]] = "independent",
    schedule: Optional[NoiseSchedule] = None,
    num_steps: Union[int, Literal["auto"]] = "auto",
    density: bool = False,
    **kwargs,
) -> Callable[[Tensor, Tensor], ConsistencyEstimator]:
    r"""Returns a builder `(batch_theta, batch_x) -> ConsistencyEstimator`.

    The network is one of sbi's vector-field networks (`VectorFieldMLP`, a residual MLP
    with layer norm, or `VectorFieldAdaMLP`) with a sinusoidal embedding of $\ln t$.
    The builder is called once with the training data, which fixes the shapes and the
    z-scoring statistics of $\theta$ and $x$.

    The default network is 128 wide with 3 residual blocks: the authors' 256 is more
    accurate but takes about twice the time per training step and per draw. Accuracy against
    sampling steps is U-shaped with its bottom where the posterior puts it; by default training
    keeps 3 steps, the bottom on average, unless its validation simulations clearly prefer
    another number (`sbi_cmpe.steps`). Evidence:
    `benchmarks/TUNING.md#network-size-and-noise-schedule`, `#sampling-steps` and
    `#automatic-steps`.

    Arguments:
        model: `"mlp"` (sbi's `VectorFieldMLP`) or `"ada_mlp"` (`VectorFieldAdaMLP`).
        hidden_features: Width of the network.
        num_layers: Number of residual blocks.
        time_embedding_dim: Size of the sinusoidal embedding of $\ln t$.
        embedding_net: Embedding net of $x$ (applied after z-scoring of $x$).
        z_score_theta: Standardization of $\theta$ before the network sees it. The
            consistency scalings assume unit variance, so keep it unless $\theta$ is
            already standardized. `"linear"` centres $\theta$ on a least-squares
            regression on the flattened $x$ and scales it by the residuals' standard
            deviations (`sbi_cmpe.standardize`; `"independent"`, with a warning, where x has
            too many entries for the simulations), for posteriors much narrower than the
            prior.
        z_score_x: Standardization of $x$ before the embedding net.
        schedule: Noise levels of training and sampling, used as given; `None` for
            `sbi_cmpe.defaults.default_schedule` of the parameter dimension (which centres
            the training noise levels lower for up to 3 parameters and samples 3 steps at
            the tuned `step_levels`). To change one constant and keep the rest, pass
            `default_schedule(theta_dim, T=5.0)`.
        num_steps: Default number of sampling steps of the posterior; `"auto"` lets
            training choose it from 1, 2, 3, 5 and 10 by a kernel score on its validation
            simulations (`sbi_cmpe.steps`).
        density: Give the network a denoiser head, trained jointly by denoising score
            matching, so that the posterior has `log_prob`, `potential` and `map`
            (`sbi_cmpe.density`). It adds $D$ outputs to the network's last layer.
        **kwargs: Passed to sbi's network builder (e.g. `activation`).

    Returns:
        A builder that takes `(batch_theta, batch_x)` and returns a
        `ConsistencyEstimator`.

    Example:
        >>> import torch
        >>> build = consistency_nn(hidden_features=32, num_layers=1)
        >>> estimator = build(torch.randn(100, 2), torch.randn(100, 3))
        >>> estimator.sample((5,), torch.randn(4, 3)).shape
        torch.Size([5, 4, 2])
    """
    if model not in _NETWORKS:
        raise ValueError(f"Unknown model {model!r}; choose one of {sorted(_NETWORKS)}.")
    arguments.positive_int("hidden_features", hidden_features)
    arguments.non_negative_int("num_layers", num_layers)
    if arguments.positive_int("time_embedding_dim", time_embedding_dim) % 2:
        raise ValueError(f"time_embedding_dim must be even, got {time_embedding_dim}.")
    for name, option, allowed in (
        ("z_score_theta", z_score_theta, _Z_SCORING_THETA),
        ("z_score_x", z_score_x, _Z_SCORING),
    ):
        if option not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {option!r}.")
    if embedding_net is not None and not isinstance(embedding_net, nn.Module):
        raise TypeError(f"embedding_net must be a torch.nn.Module, got {embedding_net!r}.")
    if schedule is not None and not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}.")
    num_steps = arguments.steps_or_auto("num_steps", num_steps)
    if not isinstance(density, bool):
        raise TypeError(f"density must be True or False, got {density!r}.")
    loose = {f.name for f in fields(NoiseSchedule)} & set(kwargs)
    if loose:
        raise TypeError(
            f"consistency_nn takes the noise schedule as one object: pass "
            f"schedule=NoiseSchedule(...) instead of {', '.join(sorted(loose))}."
        )

    def build(batch_theta: Tensor, batch_x: Tensor) -> ConsistencyEstimator:
        embedding = nn.Identity() if embedding_net is None else embedding_net
        # sbi's structured z-scoring of one entry per simulation has no spread (its std
        # over one element is NaN); for one entry it equals independent z-scoring.
        z_x, structured_x = z_score_parser(z_score_x)
        structured_x = structured_x and batch_x[0].numel() > 1
        if z_x:
            embedding = nn.Sequential(standardizing_net(batch_x, structured_x), embedding)
        mean, std, slope, x_center = _theta_standardization(z_score_theta, batch_theta, batch_x)
        net = _NETWORKS[model](
            batch_x=batch_theta,
            batch_y=batch_x,
            hidden_features=hidden_features,
            num_layers=num_layers,
            time_embedding_dim=time_embedding_dim,
            embedding_net=embedding,
            time_emb_type="sinusoidal",
            **kwargs,
        )
        if density:
            _add_denoiser_head(net, batch_theta[0].numel())
        return ConsistencyEstimator(
            net=net,
            input_shape=batch_theta[0].shape,
            condition_shape=batch_x[0].shape,
            embedding_net=embedding,
            theta_mean=mean,
            theta_std=std,
            theta_slope=slope,
            x_center=x_center,
            schedule=default_schedule(batch_theta[0].numel()) if schedule is None else schedule,
            num_steps=num_steps,
            density=density,
        )

    return build


def _theta_standardization(option: Optional[str], theta: Tensor, x: Tensor) -> tuple:
    """`(mean, std, slope, x_center)` of `z_score_theta=option` (slope and x_center `None`
    but for `"linear"`, which falls back to `"independent"`, with a warning, where
    `linear_z_score` declines)."""
    if option == "linear":
        fitted = linear_z_score(theta, x)
        if fitted is not None:
            return fitted
        warnings.warn(
            f"z_score_theta='linear' needs at most {MAX_REGRESSORS} entries of x and "
            f"{SIMULATIONS_PER_REGRESSOR} simulations per entry and a finite fit; x has "
            f"{x[0].numel()} entries and there are {len(x)} simulations: theta is z-scored "
            "independently instead.",
            stacklevel=3,
        )
        option = "independent"
    z_theta, structured = z_score_parser(option)
    structured = structured and theta[0].numel() > 1
    mean, std = z_standardization(theta, structured) if z_theta else (0.0, 1.0)
    return mean, std, None, None


def _add_denoiser_head(net: nn.Module, dim: int) -> None:
    """Widen the output layer of sbi's `VectorFieldMLP` (`output_layer`) or
    `VectorFieldAdaMLP` (`layers[-1]`) from `dim` to `2 dim` outputs: the consistency head,
    then the denoiser head, both initialized as sbi initializes the layer (zero weights)."""
    mlp = hasattr(net, "output_layer")
    old = net.output_layer if mlp else net.layers[-1]
    new = nn.Linear(old.in_features, 2 * dim, bias=old.bias is not None)
    nn.init.zeros_(new.weight)
    if old.bias is not None:
        with torch.no_grad():
            new.bias.copy_(old.bias.repeat(2))
    if mlp:
        net.output_layer = new
    else:
        net.layers[-1] = new
