"""Where the adaptive solver of `log_prob` spends its network calls: CMPE against FMPE.

zuko's Dormand-Prince solver makes 7 network calls per try, accepted or rejected. For each
try of `log_prob` of 1,000 reference draws at one observation of two moons (1,000
simulations, seed 0), prints the time (ln t for CMPE, t for FMPE), the step, and the error
ratio of the parameters and of the log-determinant (the largest over rows of error /
tolerance; a try is accepted below 1), and how many of the 1,000 rows exceed the tolerance in
their parameters (above 1) and a tenth of it. One torch thread. The error ratios use each
method's solver tolerances (CMPE's `LOG_PROB_TOLERANCE`, 1e-4; sbi's ODE defaults for FMPE,
absolute 1e-6 and relative 1e-5), and the rows are split for two parameters.

    python benchmarks/scripts/density_solver_steps.py OUT [OBSERVATION]

OUT is a benchmark folder whose cache holds `--methods cmpe:density=True fmpe` for two moons,
1,000 simulations, seed 0.
"""

from __future__ import annotations

import sys
import warnings

import torch
import zuko.utils

from sbi_cmpe.benchmark.cache import posterior_path
from sbi_cmpe.benchmark.tasks import load_task

TRIES: list = []
TOLERANCE = [0.0, 0.0]  # atol, rtol of the solve being logged
_dopri45 = zuko.utils.dopri45


def logged_dopri45(f, x, t, dt, error=False):
    """zuko's step, logging the error ratio of the parameters and of the log-determinant."""
    y, err = _dopri45(f, x, t, dt, True)
    ratio = err / (TOLERANCE[0] + TOLERANCE[1] * torch.max(abs(x), abs(y)))
    n = ratio.numel() // 3  # two parameters and one log-determinant per row
    if ratio.numel() == 3 * n:
        rows = ratio[: 2 * n].reshape(n, 2).max(1).values  # (n,)
        TRIES.append(
            (
                float(t),
                float(dt),
                rows.max().item(),
                ratio[2 * n :].max().item(),
                int((rows > 1).sum()),
                int((rows > 0.1).sum()),
            )
        )
    return (y, err) if error else y


def main(out: str, observation: int) -> None:
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    zuko.utils.dopri45 = logged_dopri45
    task = load_task("two_moons")
    x_o, theta = task.observation(observation), task.reference_samples(observation, 1000)
    for method, tolerance in (("cmpe:density=True", (1e-4, 1e-4)), ("fmpe", (1e-6, 1e-5))):
        path = posterior_path(f"{out}/cache", "two_moons", 1000, method, 0)
        posterior = torch.load(path, weights_only=False).posterior
        posterior.set_default_x(x_o)
        posterior.log_prob(theta[:10])  # warm-up, leakage correction
        TOLERANCE[:] = tolerance
        TRIES.clear()
        posterior.log_prob(theta)
        rejected = sum(1 for _, _, a, b, _, _ in TRIES if max(a, b) >= 1)
        print(f"{method}: {len(TRIES)} tries ({7 * len(TRIES)} calls), {rejected} rejected")
        print("    time    step   error theta  error log-det  rows > 1  rows > 0.1")
        for t, dt, a, b, over, near in TRIES:
            print(f"  {t:6.2f}  {dt:6.3f}  {a:12.3f}  {b:13.3f}  {over:8d}  {near:9d}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1)
