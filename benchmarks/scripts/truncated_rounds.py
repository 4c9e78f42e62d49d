"""Two truncated rounds (TSNPE-style) against one round, CMPE with a density, on two moons.

Round 1 trains on `n/2` prior simulations; its posterior's 1e-3 highest-density region at
observation 1 (sbi's `get_density_thresholder`) truncates the prior (`RestrictedPrior`); round
2 adds `n/2` simulations from it and trains again on all `n`. The baseline trains once on `n`
prior simulations. Prints sbi's C2ST of 10,000 draws of each against sbibm's reference.

    python benchmarks/scripts/truncated_rounds.py --num-simulations 1000 --seed 0
"""

import argparse
import time
import warnings

import torch
from sbi.utils import RestrictedPrior, get_density_thresholder
from sbi.utils.metrics import c2st

from sbi_cmpe import CMPEInference, consistency_nn
from sbi_cmpe.benchmark.tasks import load_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-simulations", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--observation", type=int, default=1)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    task = load_task("two_moons")
    x_o = task.observation(args.observation)
    reference = task.reference_samples(args.observation, 10_000)
    half = args.num_simulations // 2

    def trainer():
        return CMPEInference(
            task.prior, density_estimator=consistency_nn(density=True), show_progress_bars=False
        )

    torch.manual_seed(args.seed)
    start = time.perf_counter()
    one = trainer()
    theta = task.prior.sample((args.num_simulations,))
    one.append_simulations(theta, task.simulator(theta)).train()
    single = one.build_posterior().sample((10_000,), x=x_o, show_progress_bars=False)
    print(f"one round of {args.num_simulations}: C2ST {c2st(single, reference).item():.3f} "
          f"({time.perf_counter() - start:.0f} s)", flush=True)  # fmt: skip

    torch.manual_seed(args.seed)
    start = time.perf_counter()
    rounds = trainer()
    theta = task.prior.sample((half,))
    rounds.append_simulations(theta, task.simulator(theta)).train()
    posterior = rounds.build_posterior().set_default_x(x_o)
    accept = get_density_thresholder(
        posterior, quantile=1e-3, num_samples_to_estimate_support=10_000
    )
    truncated = RestrictedPrior(task.prior, accept, posterior=posterior, sample_with="rejection")
    theta = truncated.sample((half,), show_progress_bars=False, print_rejected_frac=False)
    rounds.append_simulations(theta, task.simulator(theta), proposal=truncated)
    rounds.train(retrain_from_scratch=True)
    two = rounds.build_posterior().sample((10_000,), x=x_o, show_progress_bars=False)
    print(f"two truncated rounds of {half}: C2ST {c2st(two, reference).item():.3f} "
          f"({time.perf_counter() - start:.0f} s)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
