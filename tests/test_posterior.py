"""ConsistencyPosterior: sbi's posterior interface, shapes and errors."""

import inspect
import pickle

import pytest
import torch
from sbi.utils import BoxUniform
from torch import nn
from torch.distributions import MultivariateNormal

from sbi_cmpe import CMPEInference, ConsistencyPosterior, consistency_nn
from tests.conftest import linear_gaussian_data


@pytest.fixture(scope="module")
def posteriors():
    """Trained (briefly) posteriors for 1-d and 3-d theta, with a bounded prior."""
    out = {}
    torch.manual_seed(1)
    for dim in (1, 3):
        prior, _, theta, x = linear_gaussian_data(dim, 300)
        build = consistency_nn(hidden_features=32, num_layers=1, time_embedding_dim=8)
        inference = CMPEInference(prior, density_estimator=build, show_progress_bars=False)
        inference.append_simulations(theta, x).train(max_num_epochs=2)
        out[dim] = inference.build_posterior()
    return out


@pytest.mark.parametrize("dim", [1, 3])
@pytest.mark.parametrize("shape", [(), (7,), (2, 3)])
def test_sample_shapes(posteriors, dim, shape):
    posterior = posteriors[dim]
    samples = posterior.sample(shape, x=torch.zeros(dim), show_progress_bars=False)
    assert samples.shape == (*shape, dim)
    samples = posterior.sample(shape, x=torch.zeros(1, dim), num_steps=3, show_progress_bars=False)
    assert samples.shape == (*shape, dim)


@pytest.mark.parametrize("dim", [1, 3])
@pytest.mark.parametrize("shape", [(5,), (2, 3)])
def test_sample_batched_shapes(posteriors, dim, shape):
    samples = posteriors[dim].sample_batched(
        shape, x=torch.zeros(4, dim), show_progress_bars=False
    )
    assert samples.shape == (*shape, 4, dim)
    prior = posteriors[dim].prior
    assert prior.support.check(samples).all()


def test_samples_respect_prior_support(posteriors):
    samples = posteriors[3].sample((2000,), x=3 * torch.ones(3), show_progress_bars=False)
    assert posteriors[3].prior.support.check(samples).all()


def test_chunked_sampling_gives_all_draws(posteriors):
    s = posteriors[1].sample_batched(
        (250,),
        x=torch.zeros(3, 1),
        max_sampling_batch_size=64,
        reject_outside_prior=False,
        show_progress_bars=False,
    )
    assert s.shape == (250, 3, 1)


def test_multi_dimensional_x_with_embedding_net():
    torch.manual_seed(0)
    prior = MultivariateNormal(torch.zeros(2), torch.eye(2))
    theta = prior.sample((200,))
    x = theta[:, None, :] + 0.1 * torch.randn(200, 5, 2)  # (N, 5, 2): 5 i.i.d. trials
    build = consistency_nn(
        hidden_features=32,
        num_layers=1,
        time_embedding_dim=8,
        embedding_net=nn.Flatten(),
        z_score_x="none",
    )
    inference = CMPEInference(prior, density_estimator=build, show_progress_bars=False)
    inference.append_simulations(theta, x).train(max_num_epochs=1)
    posterior = inference.build_posterior()
    assert posterior.sample((6,), x=x[0]).shape == (6, 2)
    assert posterior.sample_batched((6,), x=x[:4]).shape == (6, 4, 2)
    with pytest.raises(ValueError, match="does not match the shape of the training x"):
        posterior.sample((6,), x=torch.zeros(5, 3))


def test_default_x(posteriors):
    posterior = posteriors[3]
    posterior._x = None
    with pytest.raises(ValueError, match="no default x set"):
        posterior.sample((3,))
    assert posterior.set_default_x(torch.zeros(3)) is posterior
    assert posterior.sample((3,), show_progress_bars=False).shape == (3, 3)


def test_sample_refuses_a_batch_of_x(posteriors):
    with pytest.raises(ValueError, match="takes one observation, got a batch of 2"):
        posteriors[3].sample((3,), x=torch.zeros(2, 3))


def test_x_of_wrong_shape(posteriors):
    with pytest.raises(ValueError, match="does not match the shape of the training x"):
        posteriors[3].sample((3,), x=torch.zeros(4))


@pytest.mark.parametrize("bad", [0, -2, 2.5])
def test_bad_num_steps(posteriors, bad):
    with pytest.raises(ValueError, match="num_steps must be an int >= 1"):
        posteriors[1].sample((3,), x=torch.zeros(1), num_steps=bad)


def test_no_density(posteriors):
    posterior = posteriors[1]
    for call in (
        lambda: posterior.log_prob(torch.zeros(1, 1), x=torch.zeros(1)),
        lambda: posterior.potential(torch.zeros(1, 1), x=torch.zeros(1)),
        lambda: posterior.log_prob_batched(torch.zeros(1, 2, 1), x=torch.zeros(2, 1)),
        lambda: posterior.map(x=torch.zeros(1)),
    ):
        with pytest.raises(NotImplementedError, match="samples, not densities"):
            call()


def test_repr(posteriors):
    text = repr(posteriors[3])
    steps = posteriors[3].num_steps
    assert text.startswith(
        f"ConsistencyPosterior(theta_shape=(3,), x_shape=(3,), num_steps={steps} (auto: "
    )
    assert "prior=BoxUniform" in text


def test_pickle_round_trip_gives_identical_seeded_samples(posteriors):
    posterior = posteriors[3]
    restored = pickle.loads(pickle.dumps(posterior))
    assert isinstance(restored, ConsistencyPosterior)
    torch.manual_seed(3)
    a = posterior.sample((50,), x=torch.zeros(3), show_progress_bars=False)
    torch.manual_seed(3)
    b = restored.sample((50,), x=torch.zeros(3), show_progress_bars=False)
    assert torch.equal(a, b)


def test_to_device_keeps_default_x(posteriors):
    posterior = posteriors[1].set_default_x(torch.zeros(1))
    assert posterior.to("cpu") is posterior
    assert posterior.default_x.device.type == "cpu"
    assert posterior.sample((2,), show_progress_bars=False).shape == (2, 1)


def test_posterior_num_steps_default():
    torch.manual_seed(0)
    prior = BoxUniform(-torch.ones(1), torch.ones(1))
    theta = prior.sample((100,))
    inference = CMPEInference(
        prior,
        density_estimator=consistency_nn(hidden_features=8, num_layers=1),
        show_progress_bars=False,
    )
    inference.append_simulations(theta, theta).train(max_num_epochs=1)
    assert inference.build_posterior(num_steps=5).num_steps == 5
    with pytest.raises(ValueError, match="sample directly"):
        inference.build_posterior(sample_with="mcmc")
    net = inference._neural_net
    assert inference.build_posterior(density_estimator=net).estimator is not None
    with pytest.raises(ValueError, match="once"):
        inference.build_posterior(net, density_estimator=net)
    params = {"max_sampling_batch_size": 64}
    posterior = inference.build_posterior(direct_sampling_parameters=params)
    assert posterior.max_sampling_batch_size == 64
    with pytest.raises(ValueError, match="enable_transform"):
        inference.build_posterior(direct_sampling_parameters={"enable_transform": False})


def bounded_posterior(low: float, high: float) -> ConsistencyPosterior:
    """An untrained 1-d estimator (draws spread over about ±1) with a narrow prior."""
    torch.manual_seed(0)
    build = consistency_nn(hidden_features=8, num_layers=1, time_embedding_dim=8)
    estimator = build(torch.randn(100, 1), torch.randn(100, 1))
    return ConsistencyPosterior(estimator, BoxUniform(low * torch.ones(1), high * torch.ones(1)))


def test_low_acceptance_warns_with_the_rate():
    posterior = bounded_posterior(0.0, 0.01)
    with pytest.warns(UserWarning, match=r"Only 0\.\d\d% of the draws fell inside"):
        samples = posterior.sample((20,), x=torch.zeros(1), show_progress_bars=False)
    assert ((samples >= 0) & (samples < 0.01)).all()


def test_low_acceptance_warns_while_sampling_not_after():
    """With no draw inside the prior the rejection never ends by itself: the warning
    comes while it runs, before `max_sampling_time` stops it."""
    posterior = bounded_posterior(50.0, 51.0)  # the untrained draws lie around 0
    with pytest.warns(UserWarning, match=r"Only 0\.00% of the draws fell inside"):
        with pytest.raises(RuntimeError, match="max_sampling_time"):
            posterior.sample(
                (10,), x=torch.zeros(1), max_sampling_time=1.0, show_progress_bars=False
            )


def test_to_forgets_the_map_found_on_the_old_device():
    posterior = bounded_posterior(-3.0, 3.0)
    posterior._map = torch.zeros(1)
    posterior.to("cpu")
    assert posterior._map is None


def test_positional_arguments_are_sbis():
    """Calls written for sbi's `DirectPosterior` and `NPE.build_posterior` mean the same
    here; CMPE's own arguments (`num_steps`) are keyword-only."""
    from sbi.inference import NPE
    from sbi.inference.posteriors import DirectPosterior

    def positional(function, skip=1):
        kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        names = [
            p.name for p in inspect.signature(function).parameters.values() if p.kind in kinds
        ]
        return names[skip:]

    for name in ["sample", "sample_batched"]:
        ours = positional(getattr(ConsistencyPosterior, name))
        assert ours == positional(getattr(DirectPosterior, name))
    ours = positional(ConsistencyPosterior.__init__, skip=2)  # self, estimator
    assert ours == positional(DirectPosterior.__init__, skip=2)[: len(ours)]
    ours = positional(CMPEInference.build_posterior, skip=2)  # self, estimator
    assert ours == positional(NPE.build_posterior, skip=2)[: len(ours)]
    assert "num_steps" not in positional(ConsistencyPosterior.sample)

    posterior = bounded_posterior(-3.0, 3.0)
    torch.manual_seed(0)
    a = posterior.sample((20,), torch.zeros(1), 7, False, num_steps=2)
    torch.manual_seed(0)
    b = posterior.sample(
        (20,), x=torch.zeros(1), max_sampling_batch_size=7, show_progress_bars=False, num_steps=2
    )
    assert torch.equal(a, b)
    assert posterior.sample((5,), x=torch.tensor(0.0), num_steps="auto").shape == (5, 1)


def test_max_sampling_time_returns_partial_or_raises():
    posterior = bounded_posterior(0.0, 1e-3)  # about 1 draw in 2,500 inside
    with pytest.warns(UserWarning, match="fell inside"):
        with pytest.warns(UserWarning, match="Returning partial results"):
            samples = posterior.sample(
                (10_000,),
                x=torch.zeros(1),
                max_sampling_time=0.5,
                return_partial_on_timeout=True,
                show_progress_bars=False,
            )
    assert 0 < len(samples) < 10_000
    with pytest.warns(UserWarning, match="fell inside"):
        with pytest.raises(RuntimeError, match="max_sampling_time"):
            posterior.sample(
                (10_000,), x=torch.zeros(1), max_sampling_time=0.5, show_progress_bars=False
            )


def test_torch_save_and_load_of_posterior_and_estimator(posteriors, tmp_path):
    posterior = posteriors[3].set_default_x(torch.zeros(3))
    torch.save(posterior, tmp_path / "posterior.pt")
    torch.save(posterior.estimator, tmp_path / "estimator.pt")
    restored = torch.load(tmp_path / "posterior.pt", weights_only=False, map_location="cpu")
    estimator = torch.load(tmp_path / "estimator.pt", weights_only=False, map_location="cpu")
    torch.manual_seed(2)
    a = posterior.sample((30,), show_progress_bars=False)
    torch.manual_seed(2)
    b = restored.sample((30,), show_progress_bars=False)
    assert torch.equal(a, b)
    torch.manual_seed(2)
    c = ConsistencyPosterior(estimator, posterior.prior).sample((30,), x=torch.zeros(3))
    assert torch.equal(a, c)


def test_posterior_pickled_by_0_2_0_dev0_loads_and_samples():
    """`tests/data/posterior_0.2.0.dev0.pkl` was pickled by 0.2.0.dev0, whose estimator held
    the noise constants as loose attributes; they load as a `NoiseSchedule`."""
    from pathlib import Path

    from sbi_cmpe import NoiseSchedule

    with open(Path(__file__).parent / "data" / "posterior_0.2.0.dev0.pkl", "rb") as f:
        posterior = pickle.load(f)
    assert isinstance(posterior, ConsistencyPosterior)
    assert posterior.estimator.schedule == NoiseSchedule(p_mean=-2.0)
    assert not hasattr(posterior.estimator, "eps")
    samples = posterior.sample((50,), x=torch.zeros(2), show_progress_bars=False)
    assert samples.shape == (50, 2) and torch.isfinite(samples).all()


def test_estimator_pickle_without_schedule_or_constants_says_retrain(posteriors):
    estimator = posteriors[1].estimator
    state = estimator.__dict__.copy()
    del state["schedule"]
    fresh = object.__new__(type(estimator))
    with pytest.raises(RuntimeError, match="Retrain it with CMPEInference"):
        fresh.__setstate__(state)
