"""Short demo: CMPE vs sbi's NPE on the same two-moons simulations.

Run with `python -m sbi_cmpe.benchmark.demo`. It simulates sbibm's two-moons task once,
trains CMPE and NPE (maf, sbi's default) on the same data, and prints the C2ST of
10,000 draws against sbibm's reference posterior for observation 1, the training
time and the time for 10,000 draws of each.
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
from sbi.inference import NPE
from sbi.utils.metrics import c2st

from sbi_cmpe import CMPEInference
from sbi_cmpe.benchmark.tasks import load_task


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m sbi_cmpe.benchmark.demo", description=__doc__)
    parser.add_argument("--num-simulations", type=int, default=5_000)
    parser.add_argument(
        "--cmpe-epochs", type=int, default=None, help="CMPE's epochs (default: its own budget)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    warnings.filterwarnings("ignore")

    task = load_task("two_moons")
    theta = task.prior.sample((args.num_simulations,))
    x = task.simulator(theta)
    x_o, reference = task.observation(1), task.reference_samples(1, 10_000)
    print(f"two_moons: {args.num_simulations:,} simulations, observation 1, one torch thread")

    results = {}
    for name, trainer, kwargs in (
        (
            "CMPE",
            CMPEInference(task.prior, show_progress_bars=False),
            {} if args.cmpe_epochs is None else {"max_num_epochs": args.cmpe_epochs},
        ),
        ("NPE (maf)", NPE(task.prior, show_progress_bars=False), {}),
    ):
        torch.manual_seed(args.seed)  # each method from the same seed, as in the benchmark
        start = time.perf_counter()
        trainer.append_simulations(theta, x).train(**kwargs)
        train_s = time.perf_counter() - start
        if isinstance(trainer, NPE):
            print()  # ends sbi's "converged after N epochs" line
        posterior = trainer.build_posterior()
        posterior.sample((100,), x=x_o, show_progress_bars=False)  # warm-up
        start = time.perf_counter()
        samples = posterior.sample((10_000,), x=x_o, show_progress_bars=False)
        sample_s = time.perf_counter() - start
        score = c2st(samples, reference).item()
        results[name] = dict(c2st=score, train_s=train_s, sample_s=sample_s)
        print(
            f"{name:10s} C2ST {score:.3f}   training {train_s:5.1f} s   "
            f"10,000 draws {sample_s:.3f} s"
        )
    print("C2ST: sbi.utils.metrics.c2st (random forest); 0.5 means indistinguishable.")
    return results


if __name__ == "__main__":
    main()
