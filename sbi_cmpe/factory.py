"""`consistency_nn`: the builder of consistency estimators, like sbi's `posterior_flow_nn`."""

from __future__ import annotations

from typing import Callable, Literal, Optional

from sbi.neural_nets.net_builders.vector_field_nets import (
    build_adamlp_network,
    build_standard_mlp_network,
)
from sbi.utils.sbiutils import standardizing_net, z_score_parser, z_standardization
from torch import Tensor, nn

from sbi_cmpe.consistency import P_STD
from sbi_cmpe.estimator import ConsistencyEstimator
from sbi_cmpe.schedule import default_p_mean

__all__ = ["consistency_nn"]

_NETWORKS = {"mlp": build_standard_mlp_network, "ada_mlp": build_adamlp_network}


def consistency_nn(
    model: Literal["mlp", "ada_mlp"] = "mlp",
    hidden_features: int = 128,
    num_layers: int = 3,
    time_embedding_dim: int = 32,
    embedding_net: Optional[nn.Module] = None,
    z_score_theta: Optional[Literal["independent", "structured", "none"]] = "independent",
    z_score_x: Optional[Literal["independent", "structured", "none"]] = "independent",
    eps: float = 1e-3,
    T: float = 10.0,
    s0: int = 10,
    s1: int = 50,
    p_mean: Optional[float] = None,
    p_std: float = P_STD,
    num_steps: int = 3,
    **kwargs,
) -> Callable[[Tensor, Tensor], ConsistencyEstimator]:
    r"""Returns a builder `(batch_theta, batch_x) -> ConsistencyEstimator`.

    The network is one of sbi's vector-field networks (`VectorFieldMLP`, a residual MLP
    with layer norm, or `VectorFieldAdaMLP`) with a sinusoidal embedding of $\ln t$.
    The builder is called once with the training data, which fixes the shapes and the
    z-scoring statistics of $\theta$ and $x$.

    Defaults and where they come from (benchmark runs on seed 1 and observations 6–8,
    not the reported table): width 128 and 3 residual blocks: the authors' 256 is more
    accurate (two moons, 10,000 simulations, 20,000 steps: C2ST 0.56 vs 0.60) but takes
    about twice the time per training step and per draw; $\epsilon = 10^{-3}$, $T = 10$,
    $s_0 = 10$, $s_1 = 50$ (the authors' two-moons settings; at 10,000 simulations $s_1 = 25$
    or $100$, $T = 5$ and $s_0 = 20$ gained on one of two moons and gaussian_mixture at most
    what they lost on the other, `benchmark_results_tuning6/`); training noise levels with
    $\ln t$ centred at $-2$ for up to 3 parameters and at iCT's $-1.1$ above (two moons,
    10,000 simulations: C2ST 0.550 vs 0.573; `sbi_cmpe.schedule.default_p_mean`,
    `benchmark_results_tuning7/`); `num_steps=3` sampling steps,
    the low end of the U-shaped step sweep (two moons, 10,000 simulations: C2ST 0.76,
    0.67, 0.60, 0.61, 0.61, 0.62 at 1, 2, 3, 5, 10, 20 steps).

    Arguments:
        model: `"mlp"` (sbi's `VectorFieldMLP`) or `"ada_mlp"` (`VectorFieldAdaMLP`).
        hidden_features: Width of the network.
        num_layers: Number of residual blocks.
        time_embedding_dim: Size of the sinusoidal embedding of $\ln t$.
        embedding_net: Embedding net of $x$ (applied after z-scoring of $x$).
        z_score_theta: Standardization of $\theta$ before the network sees it. The
            consistency scalings assume unit variance, so keep it unless $\theta$ is
            already standardized.
        z_score_x: Standardization of $x$ before the embedding net.
        eps: Smallest noise level $\epsilon$.
        T: Largest noise level $T$.
        s0: Initial number of grid intervals of the training curriculum.
        s1: Final number of grid intervals of the training curriculum.
        p_mean: Mean of $\ln t$ in the lognormal distribution of training noise levels;
            `None` for -2.0 with up to 3 parameters and iCT's -1.1 above (see
            `sbi_cmpe.schedule.default_p_mean`).
        p_std: Standard deviation of $\ln t$ in that distribution (iCT: 2.0).
        num_steps: Default number of sampling steps of the posterior.
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

    def build(batch_theta: Tensor, batch_x: Tensor) -> ConsistencyEstimator:
        embedding = nn.Identity() if embedding_net is None else embedding_net
        z_x, structured_x = z_score_parser(z_score_x)
        if z_x:
            embedding = nn.Sequential(standardizing_net(batch_x, structured_x), embedding)
        z_theta, structured_theta = z_score_parser(z_score_theta)
        mean, std = z_standardization(batch_theta, structured_theta) if z_theta else (0.0, 1.0)
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
        return ConsistencyEstimator(
            net=net,
            input_shape=batch_theta[0].shape,
            condition_shape=batch_x[0].shape,
            embedding_net=embedding,
            theta_mean=mean,
            theta_std=std,
            eps=eps,
            T=T,
            s0=s0,
            s1=s1,
            p_mean=default_p_mean(batch_theta[0].numel()) if p_mean is None else p_mean,
            p_std=p_std,
            num_steps=num_steps,
        )

    return build
