"""Cost of one call of `log_prob`'s ODE (velocity and its exact divergence), four ways.

On the 1,000-simulation two moons network with a density (seed 0), observation 1, 1,000
rows at ln t = -1, one torch thread, mean of 50 calls after 5 of warm-up: zuko's way (one
forward pass, then the D vector-Jacobian products batched with `is_grads_batched`), a loop of D
backward passes, and forward mode (`torch.func.jvp`), vmapped over the D basis vectors or
in a loop; last, the forward pass alone. Prints milliseconds per call and the largest
difference to zuko's trace.

    python benchmarks/scripts/density_divergence_cost.py OUT

OUT is a benchmark folder whose cache holds `--methods cmpe:density=True` for two moons,
1,000 simulations, seed 0.
"""

from __future__ import annotations

import sys
import time
import warnings

import torch
from torch.func import jvp, vmap

from sbi_cmpe.benchmark.cache import posterior_path
from sbi_cmpe.benchmark.tasks import load_task
from sbi_cmpe.sampling_net import shared_condition_net

ROWS, LOG_T = 1000, -1.0


def main(out: str) -> None:
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    task = load_task("two_moons")
    path = posterior_path(f"{out}/cache", "two_moons", 1000, "cmpe:density=True", 0)
    estimator = torch.load(path, weights_only=False).posterior.estimator
    dim = estimator.input_shape.numel()
    with torch.no_grad():
        shared = shared_condition_net(estimator.net, estimator._embed(task.observation(1)))
    torch.manual_seed(0)
    theta = torch.randn(ROWS, dim)
    t = torch.full((ROWS,), LOG_T).exp()

    def velocity(y: torch.Tensor) -> torch.Tensor:  # (N, D) -> (N, D)
        return y - estimator._denoiser_head(y, t, shared(y, LOG_T))

    eye = torch.eye(dim).expand(ROWS, dim, dim).movedim(-1, 0)  # (D, N, D)

    def zuko_way(y):
        with torch.enable_grad():
            y = y.clone().requires_grad_()
            dy = velocity(y)
        jacobian = torch.autograd.grad(dy, y, eye, is_grads_batched=True)[0]
        return torch.einsum("i...i", jacobian)

    def backward_loop(y):
        with torch.enable_grad():
            y = y.clone().requires_grad_()
            dy = velocity(y)
            rows = [
                torch.autograd.grad(dy[:, i].sum(), y, retain_graph=i < dim - 1)[0][:, i]
                for i in range(dim)
            ]
        return sum(rows)

    def forward_vmapped(y):
        jv = vmap(lambda v: jvp(velocity, (y,), (v,))[1])(eye)  # (D, N, D)
        return torch.einsum("iNi->N", jv)

    def forward_loop(y):
        return sum(jvp(velocity, (y,), (eye[i],))[1][:, i] for i in range(dim))

    with torch.no_grad():
        reference = zuko_way(theta)
        ways = (
            ("zuko (batched backward)", zuko_way),
            ("loop of backward passes", backward_loop),
            ("forward mode, vmapped", forward_vmapped),
            ("forward mode, loop", forward_loop),
            ("forward pass alone", velocity),
        )
        for name, way in ways:
            for _ in range(5):
                result = way(theta)
            start = time.perf_counter()
            for _ in range(50):
                way(theta)
            ms = (time.perf_counter() - start) / 50 * 1e3
            change = (
                "" if way is velocity else f", trace within {(result - reference).abs().max():.1e}"
            )
            print(f"{name}: {ms:.2f} ms per call{change}")


if __name__ == "__main__":
    main(sys.argv[1])
