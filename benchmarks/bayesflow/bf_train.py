"""Train BayesFlow's ConsistencyModel on one (task, budget) of exported simulations and sample it.

Runs in BayesFlow's own environment (Python >= 3.12, see README.md here), never in
sbi-cmpe's: it needs only numpy and bayesflow. Called by `peer.py` once per (task, budget):

    python bf_train.py IN.npz OUT.npz '{"epochs": 100, "batch_size": 32, "steps": 11}'

IN.npz holds `theta (N, D)`, `x (N, X)` and `observations (O, X)`. The config gives the
epochs and batch size of `BasicWorkflow.fit_offline` (BayesFlow's defaults: 100 and 32) and
the sampling steps. OUT.npz gets `samples (O, 2 * draws, D)` (the first `draws` of each
observation timed), `train_time_s`, `sample_time_s (O,)` and `optimizer_steps`.
"""

import json
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import bayesflow as bf  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402


def main(source: str, target: str, config: str) -> None:
    cfg = json.loads(config)
    data = np.load(source)
    theta = data["theta"].astype("float32")
    x = data["x"].astype("float32").reshape(len(theta), -1)
    observations = data["observations"].astype("float32").reshape(-1, x.shape[1])
    epochs, batch, steps = int(cfg["epochs"]), int(cfg["batch_size"]), int(cfg["steps"])
    draws = int(cfg.get("draws", 10_000))
    keras.utils.set_random_seed(int(cfg.get("seed", 0)))
    batches = int(np.ceil(len(theta) / batch))
    workflow = bf.BasicWorkflow(
        inference_network=bf.networks.ConsistencyModel(total_steps=epochs * batches),
        inference_variables=["theta"],
        inference_conditions=["x"],
    )
    start = time.perf_counter()
    workflow.fit_offline({"theta": theta, "x": x}, epochs=epochs, batch_size=batch, verbose=0)
    train_time = time.perf_counter() - start
    # One untimed call compiles the sampler for this number of draws.
    workflow.sample(num_samples=draws, conditions={"x": observations[:1]}, steps=steps)
    samples, times = [], []
    for x_o in observations:
        start = time.perf_counter()
        timed = workflow.sample(num_samples=draws, conditions={"x": x_o[None]}, steps=steps)
        times.append(time.perf_counter() - start)
        extra = workflow.sample(num_samples=draws, conditions={"x": x_o[None]}, steps=steps)
        samples.append(np.concatenate([timed["theta"][0], extra["theta"][0]], axis=0))
    backend = keras.backend.backend()
    partial = f"{target}.partial"
    with open(partial, "wb") as f:  # then renamed: a killed run leaves no half-written file
        np.savez(
            f,
            samples=np.stack(samples),
            train_time_s=train_time,
            sample_time_s=np.array(times),
            optimizer_steps=epochs * batches,
            versions=f"bayesflow {bf.__version__}, keras {keras.__version__} on {backend}",
        )
    os.replace(partial, target)


if __name__ == "__main__":
    main(*sys.argv[1:4])
