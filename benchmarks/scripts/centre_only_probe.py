r"""The linear z-score's centre without its scale, measured with the benchmark without
changing the package.

`consistency_nn(z_score_theta="linear")` standardizes $\theta$ as
$(\theta - \mu(x)) / \sigma_\mathrm{res}$: centred on a regression on $x$ and scaled by the
residuals' standard deviations. This script keeps the centre and scales by $\theta$'s own
standard deviations over the simulations, as the default z-score does:
$(\theta - \mu(x)) / \sigma_\theta$. It tells which half of the option moves a task.

It patches `sbi_cmpe.factory._theta_standardization` (for `"linear"`), then runs
`python -m sbi_cmpe.benchmark` with its arguments:

    python benchmarks/scripts/centre_only_probe.py --tasks bernoulli_glm \
        --methods cmpe:z_score_theta=linear ...
"""

import sys

from torch import Tensor

import sbi_cmpe.factory as factory
from sbi_cmpe.benchmark.__main__ import main

_plain_standardization = factory._theta_standardization


def _centre_only(option, theta: Tensor, x: Tensor) -> tuple:
    mean, std, slope, x_center = _plain_standardization(option, theta, x)
    if slope is not None:
        std = theta.reshape(len(theta), -1).std(0)  # (D,), theta's own spread
    return mean, std, slope, x_center


factory._theta_standardization = _centre_only

if __name__ == "__main__":
    main(sys.argv[1:])
