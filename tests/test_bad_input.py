"""Bad input, table-driven: each case raises (or warns) with a message naming the problem."""

import pickle
import warnings

import pytest
import torch
from sbi.utils import BoxUniform
from sbi.utils.metrics import c2st

from sbi_cmpe import CMPEInference, consistency_nn
from tests.conftest import linear_gaussian_data

PRIOR = BoxUniform(-2 * torch.ones(2), 2 * torch.ones(2))
THETA = PRIOR.sample((300,))
X = THETA + 0.3 * torch.randn_like(THETA)
NAN_X = torch.full_like(X, float("nan"))


def fresh():
    build = consistency_nn(hidden_features=16, num_layers=1, time_embedding_dim=8)
    return CMPEInference(PRIOR, density_estimator=build, show_progress_bars=False)


@pytest.fixture(scope="module")
def posterior():
    torch.manual_seed(0)
    inference = fresh()
    inference.append_simulations(THETA, X).train(max_num_epochs=1)
    return inference.build_posterior()


TRAINER_CASES = [
    (
        "lengths differ",
        lambda i: i.append_simulations(THETA, X[:-1]),
        ValueError,
        "same number of simulations, got 300 parameter sets and 299",
    ),
    (
        "theta dimension vs prior",
        lambda i: i.append_simulations(torch.zeros(300, 3), X),
        ValueError,
        r"prior has event shape \(2,\)",
    ),
    (
        "theta not 2-d",
        lambda i: i.append_simulations(THETA[:, 0], X),
        ValueError,
        r"theta must have shape \(N, D\)",
    ),
    (
        "all simulations invalid",
        lambda i: i.append_simulations(THETA, NAN_X),
        ValueError,
        "All 300 simulations contain NaN or infinite values",
    ),
    (
        "NaN theta",
        lambda i: i.append_simulations(THETA * float("nan"), X),
        ValueError,
        "theta contains NaN or infinite values",
    ),
    (
        "a list",
        lambda i: i.append_simulations(THETA.tolist(), X),
        TypeError,
        "theta must be a torch tensor or a numpy array",
    ),
    (
        "boolean x",
        lambda i: i.append_simulations(THETA, X > 0),
        TypeError,
        "x must hold real numbers",
    ),
    (
        "non-prior proposal",
        lambda i: i.append_simulations(
            THETA, X, proposal=BoxUniform(-torch.ones(2), torch.ones(2))
        ),
        ValueError,
        "would need a loss correction",
    ),
    ("train before data", lambda i: i.train(), RuntimeError, "call `append_simulations"),
    (
        "resume before training",
        lambda i: i.append_simulations(THETA, X).train(resume_training=True),
        RuntimeError,
        "needs an earlier call of `train",
    ),
    (
        "no validation data",
        lambda i: i.append_simulations(THETA, X).train(validation_fraction=0.0),
        ValueError,
        "validation_fraction must lie strictly between 0 and 1",
    ),
    (
        "warm start of the whole run",
        lambda i: i.append_simulations(THETA, X).train(warm_start=1.0),
        ValueError,
        r"warm_start must lie in \[0, 1\)",
    ),
    (
        "negative warm start",
        lambda i: i.append_simulations(THETA, X).train(warm_start=-0.1),
        ValueError,
        r"warm_start must lie in \[0, 1\)",
    ),
    (
        "NaN warm start",
        lambda i: i.append_simulations(THETA, X).train(warm_start=float("nan")),
        ValueError,
        r"warm_start must lie in \[0, 1\)",
    ),
    (
        "warm start not a number",
        lambda i: i.append_simulations(THETA, X).train(warm_start="half"),
        TypeError,
        "warm_start must be a number",
    ),
    (
        "too few training simulations",
        lambda i: i.append_simulations(THETA[:3], X[:3]).train(validation_fraction=0.5),
        ValueError,
        "leave 1 for training and 2 for validation",
    ),
    (
        "posterior before training",
        lambda i: i.append_simulations(THETA, X).build_posterior(),
        RuntimeError,
        r"call `train\(\)` first",
    ),
    (
        "unknown network",
        lambda i: CMPEInference(PRIOR, density_estimator="transformer"),
        ValueError,
        "Unknown model 'transformer'",
    ),
]


@pytest.mark.parametrize(
    "case, call, error, message", TRAINER_CASES, ids=[c[0] for c in TRAINER_CASES]
)
def test_trainer_refuses_bad_input(case, call, error, message):
    with pytest.raises(error, match=message):
        call(fresh())


POSTERIOR_CASES = [
    (
        "x of another shape",
        lambda p: p.sample((3,), x=torch.zeros(5)),
        ValueError,
        r"does not match the shape of the training x, \(2,\)",
    ),
    (
        "several x in sample",
        lambda p: p.sample((3,), x=torch.zeros(4, 2)),
        ValueError,
        "takes one observation, got a batch of 4",
    ),
    (
        "NaN x",
        lambda p: p.sample((3,), x=torch.tensor([float("nan"), 0.0])),
        ValueError,
        "x contains NaN or infinite values",
    ),
    (
        "num_steps 0",
        lambda p: p.sample((3,), x=torch.zeros(2), num_steps=0),
        ValueError,
        "num_steps must be an int >= 1, got 0",
    ),
    (
        "num_steps float",
        lambda p: p.sample((3,), x=torch.zeros(2), num_steps=2.0),
        ValueError,
        "num_steps must be an int >= 1, got 2.0",
    ),
    (
        "negative sample shape",
        lambda p: p.sample((-3,), x=torch.zeros(2)),
        ValueError,
        r"must not have negative sizes, got \(-3,\)",
    ),
    (
        "negative batched shape",
        lambda p: p.sample_batched((2, -1), x=torch.zeros(3, 2)),
        ValueError,
        "must not have negative sizes",
    ),
    (
        "log_prob",
        lambda p: p.log_prob(torch.zeros(1, 2), x=torch.zeros(2)),
        NotImplementedError,
        "gives samples, not densities",
    ),
]


@pytest.mark.parametrize(
    "case, call, error, message", POSTERIOR_CASES, ids=[c[0] for c in POSTERIOR_CASES]
)
def test_posterior_refuses_bad_input(posterior, case, call, error, message):
    with pytest.raises(error, match=message):
        call(posterior)


def test_no_x_and_no_default(posterior):
    posterior._x = None
    with pytest.raises(ValueError, match="No x given and no default x set"):
        posterior.sample((3,))


def test_fewer_simulations_than_one_batch():
    """50 simulations with a batch of 128: one batch per epoch, of the 45 training sims."""
    inference = fresh()
    inference.append_simulations(THETA[:50], X[:50]).train(max_num_epochs=3)
    assert inference.optimizer_steps == 3


def test_chunks_stay_within_max_sampling_batch_size(posterior, monkeypatch):
    sizes = []
    sample = posterior.estimator.sample

    def recording(sample_shape, condition, *args, **kwargs):
        sizes.append(torch.Size(sample_shape).numel() * condition.shape[0])
        return sample(sample_shape, condition, *args, **kwargs)

    monkeypatch.setattr(posterior.estimator, "sample", recording)
    out = posterior.sample(
        (25_000,),
        x=torch.zeros(2),
        max_sampling_batch_size=4_000,
        reject_outside_prior=False,
        show_progress_bars=False,
    )
    assert out.shape == (25_000, 2) and max(sizes) <= 4_000
    sizes.clear()
    out = posterior.sample_batched(
        (300,), x=torch.zeros(50, 2), max_sampling_batch_size=1_000, show_progress_bars=False
    )
    assert out.shape == (300, 50, 2) and max(sizes) <= 1_000
    # Without a size: the posterior's, else 2,048 draws per call on a CPU.
    from sbi_cmpe.posterior import default_sampling_batch_size

    assert default_sampling_batch_size("cpu") == 2_048
    assert default_sampling_batch_size("cuda:0") == 10_000
    sizes.clear()
    posterior.sample((5_000,), x=torch.zeros(2), show_progress_bars=False)
    assert posterior.max_sampling_batch_size is None and max(sizes) == 2_048
    sizes.clear()
    monkeypatch.setattr(posterior, "max_sampling_batch_size", 3_000)
    posterior.sample((5_000,), x=torch.zeros(2), show_progress_bars=False)
    assert max(sizes) == 3_000


def test_trainer_saves_and_loads_with_torch(tmp_path):
    torch.manual_seed(0)
    inference = fresh()
    inference.append_simulations(THETA, X).train(max_num_epochs=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(inference, tmp_path / "trainer.pt")
        restored = torch.load(tmp_path / "trainer.pt", weights_only=False)
        copy = pickle.loads(pickle.dumps(restored))
    torch.manual_seed(1)
    a = inference.build_posterior().sample((20,), x=torch.zeros(2))
    torch.manual_seed(1)
    b = copy.build_posterior().sample((20,), x=torch.zeros(2))
    assert torch.equal(a, b)


@pytest.mark.slow
def test_split_training_matches_one_run():
    """Interrupted and resumed training ends where one run ends, within C2ST noise."""
    prior, _, theta, x = linear_gaussian_data(2, 2000)
    build = consistency_nn(hidden_features=64, num_layers=2, time_embedding_dim=16)

    def posterior_after(split: bool):
        torch.manual_seed(0)
        inference = CMPEInference(prior, density_estimator=build, show_progress_bars=False)
        inference.append_simulations(theta, x)
        if split:
            inference.train(max_num_epochs=1)  # builds the network
            original, calls = inference._neural_net.loss, []

            def interrupt(*args, **kwargs):
                if torch.is_grad_enabled():
                    calls.append(1)
                    if len(calls) == 500:
                        raise KeyboardInterrupt
                return original(*args, **kwargs)

            inference._neural_net.loss = interrupt
            with pytest.raises(KeyboardInterrupt), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                inference.train(max_num_epochs=60)
            inference._neural_net.loss = original
            inference.train(max_num_epochs=60, resume_training=True)
        else:
            inference.train(max_num_epochs=1)
            inference.train(max_num_epochs=60)
        assert inference.optimizer_steps == 60 * (1800 // 128)
        return inference.build_posterior().sample((2000,), x=torch.zeros(2))

    score = c2st(posterior_after(True), posterior_after(False)).item()
    assert score < 0.6, score
