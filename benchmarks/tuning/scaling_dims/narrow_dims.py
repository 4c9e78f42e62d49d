"""Where the scaling suite's CMPE posteriors miss: per-dimension standard deviations against the
exact posterior, the sampling steps, and the w2 of exact draws (the metric's floor).

Reads the cached posteriors of `benchmarks/scaling/dims` (seed 0) and of this folder (seed 1).
Usage (from the repository root; output in narrow_dims.txt beside this file):
    python benchmarks/tuning/scaling_dims/narrow_dims.py
"""

from pathlib import Path

import torch

from sbi_cmpe.benchmark.scaling import _accuracy, exact_posterior, linear_gaussian_task

ROOT = Path(__file__).parents[2]
REPORTED = ROOT / "scaling" / "dims" / "cache"
TUNING = Path(__file__).parent / "cache"


def load(cache: Path, dim: int, label: str, seed: int):
    path = cache / f"posterior_linear_gaussian_d{dim}_10000_{label}_{seed}.pt"
    return torch.load(path, weights_only=False).posterior


def draws(posterior, x_o, **kwargs):
    torch.manual_seed(0)
    return posterior.sample((10_000,), x=x_o, show_progress_bars=False, **kwargs)


def main() -> None:
    torch.set_num_threads(1)
    print("sd ratio (draws / exact) at observation 1, seed 0, 8 dimensions from narrow to wide")
    for dim, label in [(32, "cmpe"), (128, "cmpe"), (128, "npe_maf"), (2, "npe_maf")]:
        task = linear_gaussian_task(dim)
        x_o = task.observation(1)
        exact = exact_posterior(dim, x_o)
        sd = exact.covariance_matrix.diagonal().sqrt()
        ratio = draws(load(REPORTED, dim, label, 0), x_o).std(0) / sd
        pick = torch.linspace(0, dim - 1, min(dim, 8)).long()
        print(f"D={dim} {label}: exact sd {sd[pick].numpy().round(3)}")
        print(f"{'':>12} ratio    {ratio[pick].numpy().round(2)}")
    print("\nD=128, observation 1: metrics against the number of sampling steps")
    task = linear_gaussian_task(128)
    x_o = task.observation(1)
    exact = exact_posterior(128, x_o)
    runs = [(REPORTED, "cmpe", 0), (TUNING, "cmpe", 1)]
    runs += [(TUNING, "cmpe_hidden_features_512", 1), (TUNING, "cmpe_steps_30000", 1)]
    for cache, label, seed in runs:
        posterior = load(cache, 128, label, seed)
        for k in (1, 3, 10):
            metrics = _accuracy(draws(posterior, x_o, num_steps=k), exact)
            text = ", ".join(f"{name} {value:.3f}" for name, value in metrics.items())
            print(f"{label} seed {seed}, {k} steps (chosen: {posterior.num_steps}): {text}")
    print("\nw2 of 10,000 exact draws (the metric's floor), observation 1")
    for dim in (2, 8, 32, 128):
        exact = exact_posterior(dim, linear_gaussian_task(dim).observation(1))
        torch.manual_seed(0)
        print(f"D={dim}: {_accuracy(exact.sample((10_000,)), exact)['w2']:.4f}")


if __name__ == "__main__":
    main()
