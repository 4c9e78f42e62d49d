r"""The network at sampling time, where all draws share their noise level and their x.

During training every row of a batch has its own $\theta_t$, $t$ and $x$, so the
network is evaluated row by row. During multistep sampling (`ConsistencyEstimator.sample`)
all $n \cdot B$ rows of a step share one noise level $\tau$, and the $n$ draws of each of
the $B$ conditions share that condition; so do the rows of one call of the density's
probability-flow ODE without gradients (`sbi_cmpe.density`). For sbi's `VectorFieldMLP`

    h = W_m act([W_in theta_t + b_in, W_c x + b_c]) + b_m
      = W_m^theta act(W_in theta_t + b_in) + (W_m^x act(W_c x + b_c) + b_m)

so the term in brackets is computed once per condition, the time embedding once per step,
and only the parts that depend on $\theta_t$ once per row. This removes the condition
layer, half of the merge layer, the time layer and a concatenation from every row: about a
quarter of the multiply-adds of one step of the 128-wide default network
(`benchmarks/TUNING.md#sampling-speed`). The result equals the network's own forward pass
up to float rounding (tested), for element-wise activations; it reads the layers' weights
directly, so forward hooks on the network are not called.
"""

from __future__ import annotations

from typing import Callable

import torch
from sbi.neural_nets.net_builders.vector_field_nets import VectorFieldMLP
from torch import Tensor, nn

__all__ = ["shared_condition_net"]

# Evaluates the network at (theta_t (n * B, D), ln tau) for the B conditions it was made
# for, rows draw-major (row i belongs to condition i % B); returns (n * B, D).
SharedConditionNet = Callable[[Tensor, float], Tensor]


def shared_condition_net(net: nn.Module, embedded_x: Tensor) -> SharedConditionNet:
    """The network with the conditions `embedded_x` fixed, for one sampling run or ODE solve.

    Arguments:
        net: Network `(theta_t (N, D), embedded_x (N, C), log_t (N,)) -> (N, D)`.
        embedded_x: Embedded conditions of shape `(B, C)`.

    Returns:
        A function `(theta_t (n * B, D), log_tau) -> (n * B, D)`: the fast path for sbi's
        `VectorFieldMLP` (exactly that class, whose forward pass it reproduces), else the
        network's own forward pass on repeated conditions.
    """
    if type(net) is VectorFieldMLP:
        return _SharedConditionMLP(net, embedded_x)

    def generic(theta_t: Tensor, log_tau: float) -> Tensor:
        n = theta_t.shape[0] // embedded_x.shape[0]
        log_t = theta_t.new_full((theta_t.shape[0],), log_tau)  # (n * B,)
        return net(theta_t, embedded_x.repeat(n, 1), log_t)

    return generic


class _SharedConditionMLP:
    """`VectorFieldMLP.forward` with the condition and time terms computed once."""

    def __init__(self, net: VectorFieldMLP, embedded_x: Tensor) -> None:
        self.net = net
        merge = net.input_merge_layer
        hidden = net.input_layer.out_features
        self.merge_theta = merge.weight[:, :hidden]  # (H, H), acts on the theta half
        condition = net.activation(net.condition_layer(embedded_x))  # (B, H)
        # Condition half of the merge layer, bias included.
        self.condition_term = torch.addmm(merge.bias, condition, merge.weight[:, hidden:].T)

    def __call__(self, theta_t: Tensor, log_tau: float) -> Tensor:
        net, act = self.net, self.net.activation
        batch, hidden = self.condition_term.shape
        log_t = theta_t.new_full((1,), log_tau)
        time_term = net.time_linear_layer(net.time_emb(log_t))  # (1, H)
        h = act(net.input_layer(theta_t))  # (n * B, H)
        if batch == 1:
            h = torch.addmm(self.condition_term, h, self.merge_theta.T)
        else:
            h = (h @ self.merge_theta.T).view(-1, batch, hidden) + self.condition_term
            h = h.view(-1, hidden)
        h = act(h)
        for i, layer in enumerate(net.layers):
            h_old = h
            h = act(layer(h))
            h += time_term
            if net.skip_connections:
                h += h_old
            if net.layer_norm:
                h = net.layers_norm[i](h)
        return net.output_layer(h)  # (n * B, D)
