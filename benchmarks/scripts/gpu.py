"""GPU timing: CMPE on two moons (10,000 simulations of seed 1), trained and sampled on cuda
and on the CPU of the same machine. Reads `.tune/` (see `make_bundle.py`). Run from the
repository root: `python benchmarks/scripts/gpu.py`."""

import time
import warnings

import torch
from sbi.utils import BoxUniform

from sbi_cmpe import CMPEInference

warnings.simplefilter("ignore")
bundle = torch.load(".tune/bundle.pt")["two_moons"]
sims = torch.load(".tune/sims/sims_two_moons_10000_1.pt")
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no cuda"
print("cpu threads", torch.get_num_threads(), gpu, flush=True)


def best_of_5(fn, device: str) -> float:
    fn()  # warm-up
    times = []
    for _ in range(5):
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return round(min(times), 4)


runs = [("cpu", 1), ("cpu", 16)]
if torch.cuda.is_available():
    runs.insert(0, ("cuda", 16))
for device, threads in runs:
    torch.set_num_threads(threads)
    prior = BoxUniform(bundle["prior"][1].to(device), bundle["prior"][2].to(device))
    inference = CMPEInference(prior, device=device, show_progress_bars=False)
    inference.append_simulations(sims["theta"], sims["x"])
    start = time.perf_counter()
    inference.train(max_num_epochs=30)
    if device == "cuda":
        torch.cuda.synchronize()
    train_s = time.perf_counter() - start
    post = inference.build_posterior()
    x_o, xs = bundle["obs"][6].to(device), sims["x"][:100].to(device)
    res = {
        "10k draws": best_of_5(
            lambda post=post, x_o=x_o: post.sample((10_000,), x=x_o, show_progress_bars=False),
            device,
        ),
        "1000 x 100 batched": best_of_5(
            lambda post=post, xs=xs: post.sample_batched((1_000,), x=xs, show_progress_bars=False),
            device,
        ),
        "100k draws no reject": best_of_5(
            lambda post=post, x_o=x_o: post.sample(
                (100_000,), x=x_o, show_progress_bars=False, reject_outside_prior=False
            ),
            device,
        ),
    }
    steps = inference.optimizer_steps
    print(
        f"{device} threads={threads}: {steps} steps in {train_s:.1f} s "
        f"({1000 * train_s / steps:.2f} ms/step, incl. validations); "
        f"sampling best of 5 (s): {res}",
        flush=True,
    )
