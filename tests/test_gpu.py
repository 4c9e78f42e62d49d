"""Training and sampling on a CUDA device (skipped where there is none)."""

import pytest
import torch
from sbi.utils import BoxUniform

from sbi_cmpe import CMPEInference, consistency_nn

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("data_device", [None, "cpu"])
def test_train_and_sample_on_cuda(data_device, tmp_path):
    prior = BoxUniform(-2 * torch.ones(2, device="cuda"), 2 * torch.ones(2, device="cuda"))
    theta = prior.sample((1_000,)).cpu()
    x = theta + 0.3 * torch.randn_like(theta)
    inference = CMPEInference(
        prior,
        density_estimator=consistency_nn(hidden_features=64),
        device="cuda",
        show_progress_bars=False,
    )
    estimator = inference.append_simulations(theta, x, data_device=data_device).train(
        max_num_epochs=5
    )
    assert next(estimator.parameters()).device.type == "cuda"
    posterior = inference.build_posterior()
    samples = posterior.sample((1_000,), x=torch.zeros(2), show_progress_bars=False)
    assert samples.device.type == "cuda" and samples.shape == (1_000, 2)
    batched = posterior.sample_batched((10,), x=torch.zeros(7, 2), show_progress_bars=False)
    assert batched.shape == (10, 7, 2)

    # Saved on the GPU, loaded on the CPU: samples on the CPU, with a CPU prior.
    torch.save(posterior, tmp_path / "posterior.pt")
    restored = torch.load(tmp_path / "posterior.pt", weights_only=False, map_location="cpu")
    restored.prior = BoxUniform(-2 * torch.ones(2), 2 * torch.ones(2))
    assert restored.sample((5,), x=torch.zeros(2)).device.type == "cpu"


@pytest.mark.parametrize("method", ["cmpe", "npe_maf"])
def test_benchmark_trains_on_cuda(method):
    from sbi_cmpe.benchmark.methods import train_method

    prior = BoxUniform(-2 * torch.ones(2, device="cuda"), 2 * torch.ones(2, device="cuda"))
    theta = prior.sample((500,)).cpu()
    x = theta + 0.3 * torch.randn_like(theta)
    result = train_method(method, prior, theta, x, max_num_epochs=2, device="cuda")
    samples = result.posterior.sample((10,), x=torch.zeros(2), show_progress_bars=False)
    assert samples.device.type == "cuda" and samples.shape == (10, 2)
