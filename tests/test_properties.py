"""Property-based tests of every public entry point (Hypothesis).

The property: every input is either accepted, and then gives finite draws of the right
shape, or refused with a `ValueError` or `TypeError` whose message names the argument.
Any other exception (from deep inside torch or sbi) fails the test. The examples that
Hypothesis found when this suite was written are kept as `@example`s; the runs are
derandomized, so CI sees the same cases every time.
"""

import math
import re
import warnings
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sbi.utils import BoxUniform
from torch import nn
from torch.distributions import Independent, Normal

from sbi_cmpe import CMPEInference, ConsistencyPosterior, NoiseSchedule, consistency_nn

PROFILE = dict(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TINY = dict(hidden_features=8, num_layers=1, time_embedding_dim=4)


@contextmanager
def accepted_or_refused(*names):
    """Let `ValueError`/`TypeError` through only when the message names one of `names`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        except (ValueError, TypeError) as err:
            message = str(err)
            # The argument as a whole word: "x" must not match inside "expected".
            assert any(re.search(rf"(?<![\w.]){re.escape(n)}(?!\w)", message) for n in names), (
                f"{type(err).__name__} does not name {names}: {message}"
            )
            raise _Refused from err


class _Refused(Exception):
    """Raised by `accepted_or_refused` for a proper refusal."""


def run(call, *names):
    """`call()`'s result, or `None` when it was properly refused."""
    try:
        with accepted_or_refused(*names):
            return call()
    except _Refused:
        return None


def mostly_valid(valid: dict, invalid: dict):
    """Keyword arguments drawn from `valid`, with up to two of them drawn from `invalid`."""

    @st.composite
    def draw(draw_fn):
        kwargs = {name: draw_fn(st.sampled_from(values)) for name, values in valid.items()}
        bad = draw_fn(st.lists(st.sampled_from(sorted(invalid)), max_size=2, unique=True))
        for name in bad:
            kwargs[name] = draw_fn(st.sampled_from(invalid[name]))
        return kwargs

    return draw()


def assert_draws(samples, shape):
    assert samples.shape == torch.Size(shape), (samples.shape, shape)
    assert torch.isfinite(samples).all()


def prior_of(kind: str, dim: int):
    if kind == "box":
        return BoxUniform(-2 * torch.ones(dim), 2 * torch.ones(dim))
    if kind == "gaussian":
        return Independent(Normal(torch.zeros(dim), torch.ones(dim)), 1)
    return None


# ---------------------------------------------------------------- append_simulations
VALUES = st.sampled_from(["finite", "nan_row", "inf_entry", "all_nan", "huge", "constant"])
X_SHAPES = st.sampled_from([(2,), (5,), (1, 3, 3), (3, 2)])  # vector, image, i.i.d. trials
KINDS = st.sampled_from(["tensor", "float64", "int", "numpy", "list", "bool"])


def fill(values: str, shape, generator) -> torch.Tensor:
    t = torch.randn(shape, generator=generator)
    if values == "nan_row" and len(t) > 0:
        t[0] = float("nan")
    elif values == "inf_entry" and t.numel() > 0:
        t.view(-1)[-1] = float("inf")
    elif values == "all_nan":
        t[:] = float("nan")
    elif values == "huge":
        t = t * 1e6
    elif values == "constant":
        t = torch.ones_like(t)
    return t


def as_kind(t: torch.Tensor, kind: str):
    return {
        "tensor": lambda: t,
        "float64": lambda: t.double(),
        "int": lambda: t.nan_to_num(0, 0, 0).round().long(),
        "numpy": lambda: t.numpy(),
        "list": lambda: t.tolist(),
        "bool": lambda: t > 0,
    }[kind]()


@settings(max_examples=150, **PROFILE)
@given(
    n=st.integers(0, 40),
    n_x=st.sampled_from([None, 0, 1]),
    dim=st.integers(1, 3),
    theta_dim=st.sampled_from([None, 0, 4]),
    x_shape=X_SHAPES,
    prior=st.sampled_from(["box", "gaussian", None]),
    theta_values=VALUES,
    x_values=VALUES,
    theta_kind=KINDS,
    x_kind=KINDS,
)
@example(  # issue 20: empty simulations failed inside torch ("cannot reshape tensor of 0 ...")
    n=0, n_x=None, dim=2, theta_dim=None, x_shape=(2,), prior="box",
    theta_values="finite", x_values="finite", theta_kind="tensor", x_kind="tensor",
)  # fmt: skip
@example(  # two simulations: one training row, whose z-scoring gave a NaN loss
    n=2, n_x=None, dim=2, theta_dim=None, x_shape=(2,), prior="gaussian",
    theta_values="finite", x_values="finite", theta_kind="tensor", x_kind="tensor",
)  # fmt: skip
def test_append_simulations_then_train_and_sample(
    n, n_x, dim, theta_dim, x_shape, prior, theta_values, x_values, theta_kind, x_kind
):
    g = torch.Generator().manual_seed(n)
    theta = fill(theta_values, (n, dim if theta_dim is None else theta_dim), g)
    x = fill(x_values, (n if n_x is None else n_x, *x_shape), g)
    inference = CMPEInference(
        prior_of(prior, dim), density_estimator=consistency_nn(**TINY), show_progress_bars=False
    )
    appended = run(
        lambda: inference.append_simulations(as_kind(theta, theta_kind), as_kind(x, x_kind)),
        "theta",
        "x",
    )
    if appended is None:
        return
    assert appended is inference
    stored_theta, stored_x, _ = inference.get_simulations()
    assert torch.isfinite(stored_theta).all() and torch.isfinite(stored_x).all()
    estimator = run(
        lambda: inference.train(max_num_epochs=1, training_batch_size=16),
        "validation_fraction",
    )
    if estimator is None:
        assert len(stored_theta) < 22  # fewer than 2 training simulations at fraction 0.1
        return
    posterior = inference.build_posterior()
    samples = run(
        lambda: posterior.sample(
            (7,), x=stored_x[0], show_progress_bars=False, reject_outside_prior=False
        ),
        "x",
    )
    assert_draws(samples, (7, stored_theta.shape[1]))


# ----------------------------------------------------------------------- train
@pytest.fixture(scope="module")
def simulations():
    torch.manual_seed(0)
    prior = BoxUniform(-2 * torch.ones(2), 2 * torch.ones(2))
    theta = prior.sample((60,))
    return prior, theta, theta + 0.3 * torch.randn_like(theta)


BAD_NUMBERS = [0, -1, 0.0, -0.5, 2.5, math.nan, math.inf, True, "3", None]


TRAIN_VALID = dict(
    training_batch_size=[1, 16, 1000, np.int64(32)],
    learning_rate=[None, 1e-3, 1e-9],
    validation_fraction=[0.1, 0.5, 0.9],
    stop_after_epochs=[1, 20],
    max_num_epochs=[1, 2, np.int64(2)],
    clip_max_norm=[None, 5.0, 1e-6],
    dataloader_kwargs=[None, {}, {"num_workers": 0}],
)
TRAIN_INVALID = dict(
    {name: BAD_NUMBERS for name in TRAIN_VALID if name != "dataloader_kwargs"},
    validation_fraction=[0.99, 1.0, *BAD_NUMBERS],
    dataloader_kwargs=[{"bogus": 1}, [1], "workers"],
)


@settings(max_examples=150, **PROFILE)
@given(kwargs=mostly_valid(TRAIN_VALID, TRAIN_INVALID))
@example(kwargs=dict(max_num_epochs=0))  # silently returned an untrained network
@example(kwargs=dict(training_batch_size=0))  # failed inside torch's DataLoader
@example(kwargs=dict(validation_fraction=math.nan))  # failed in int()
@example(kwargs=dict(learning_rate=0.0))  # trained nothing, silently
@example(kwargs=dict(dataloader_kwargs={"bogus": 1}))  # failed inside torch's DataLoader
def test_train_keywords(simulations, kwargs):
    prior, theta, x = simulations
    kwargs = {"max_num_epochs": 1, **kwargs}
    if kwargs["max_num_epochs"] is None:
        kwargs["max_num_epochs"] = 1  # the default budget is thousands of steps
    inference = CMPEInference(
        prior, density_estimator=consistency_nn(**TINY), show_progress_bars=False
    )
    inference.append_simulations(theta, x)
    estimator = run(lambda: inference.train(**kwargs), *kwargs)
    if estimator is None:
        assert inference.optimizer_steps == 0  # nothing half-trained is left behind
        return
    assert inference.optimizer_steps >= 1
    samples = inference.build_posterior().sample((5,), x=x[0], show_progress_bars=False)
    assert_draws(samples, (5, 2))


# --------------------------------------------------- build_posterior, sample, ...
@pytest.fixture(scope="module")
def trained(simulations):
    prior, theta, x = simulations
    inference = CMPEInference(
        prior, density_estimator=consistency_nn(**TINY), show_progress_bars=False
    )
    inference.append_simulations(theta, x).train(max_num_epochs=20)
    return inference


SHAPES = st.sampled_from([(), (0,), (1,), (3,), (2, 3), 4, 0, -1, (2, -1), (2.5,), "3", None])
XS = st.sampled_from(
    ["one", "batch1", "batch4", "empty", "wrong_dim", "nan", "numpy", "list", "int", "str"]
)


def make_x(kind, batched: bool):
    base = torch.tensor([[0.1, -0.2], [0.5, 0.5], [1.0, 0.0], [-1.0, 1.0]])
    return {
        "one": base[0],
        "batch1": base[:1],
        "batch4": base if batched else base[:1],
        "empty": base[:0],
        "wrong_dim": torch.zeros(1, 3),
        "nan": torch.tensor([math.nan, 0.0]),
        "numpy": base[0].numpy(),
        "list": base[0].tolist(),
        "int": torch.tensor([1, 0]),
        "str": "x_o",
    }[kind]


def expected_shape(sample_shape):
    return (sample_shape,) if isinstance(sample_shape, int) else tuple(sample_shape)


SAMPLE_VALID = dict(
    sample_shape=[(3,), (), (1,), (2, 3), 4, (0,)],
    x=["one", "batch1", "batch4", "numpy", "list", "int"],
    num_steps=[None, 1, 3],
    max_sampling_batch_size=[None, 1, 7, 10_000],
    build_num_steps=[None, 2],
    build_chunk=[None, 3],
    reject_outside_prior=[True, False],
)
SAMPLE_INVALID = dict(
    sample_shape=[-1, (2, -1), (2.5,), "3", None],
    x=["empty", "wrong_dim", "nan", "str"],
    num_steps=[0, -2, 2.0, True, "3"],
    max_sampling_batch_size=[0, -5, 1.5],
    build_num_steps=[0, 1.5],
    build_chunk=[0, -1],
)


@settings(max_examples=300, **PROFILE)
@given(kwargs=mostly_valid(SAMPLE_VALID, SAMPLE_INVALID))
@example(kwargs=dict(x="empty"))  # divided by zero in the chunking
@example(kwargs=dict(sample_shape=(0,)))  # zero draws failed in torch.cat
@example(kwargs=dict(max_sampling_batch_size=-5))  # was taken as 1
@example(kwargs=dict(sample_shape=4))  # an int sample_shape failed in torch.Size
@example(kwargs=dict(x="str"))  # failed inside torch.as_tensor
def test_build_posterior_sample_and_sample_batched(trained, kwargs):
    kwargs = {**{k: v[0] for k, v in SAMPLE_VALID.items()}, **kwargs}
    sample_shape, x = kwargs.pop("sample_shape"), kwargs.pop("x")
    build_num_steps, build_chunk = kwargs.pop("build_num_steps"), kwargs.pop("build_chunk")
    posterior = run(
        lambda: trained.build_posterior(
            num_steps=build_num_steps, max_sampling_batch_size=build_chunk
        ),
        "num_steps",
        "max_sampling_batch_size",
    )
    if posterior is None:
        return
    kwargs["show_progress_bars"] = False
    names = ("sample_shape", "x", "num_steps", "max_sampling_batch_size")
    samples = run(lambda: posterior.sample(sample_shape, x=make_x(x, False), **kwargs), *names)
    if samples is not None:
        assert_draws(samples, (*expected_shape(sample_shape), 2))
    xs = make_x(x, True)
    batched = run(lambda: posterior.sample_batched(sample_shape, x=xs, **kwargs), *names)
    if batched is not None:
        batch = 1 if x in ("one", "numpy", "list", "int") else len(xs)
        assert_draws(batched, (*expected_shape(sample_shape), batch, 2))


@settings(max_examples=30, **PROFILE)
@given(x=XS)
@example(x="wrong_dim")  # was stored and only refused when sampling
@example(x="batch4")  # four observations were stored as "the" default x
def test_set_default_x(trained, x):
    posterior = trained.build_posterior()
    result = run(lambda: posterior.set_default_x(make_x(x, True)), "x", "observation")
    if result is None:
        assert posterior.default_x is None
        return
    assert result is posterior and posterior.default_x.shape == (1, 2)
    assert_draws(posterior.sample((3,), show_progress_bars=False), (3, 2))


# -------------------------------------------------------------- consistency_nn
NN_VALID = dict(
    model=["mlp", "ada_mlp"],
    hidden_features=[8, 1],
    num_layers=[1, 0, 2],
    time_embedding_dim=[4, 2],
    embedding_net=[None, "linear"],
    z_score_theta=["independent", "structured", "linear", "none", None],
    z_score_x=["independent", "none", None],
    schedule=[None, NoiseSchedule(T=5.0)],
    num_steps=[3, 1],
    density=[False, True],
    theta_shape=[(2,), (1,), (2, 2)],
    x_shape=[(2,), (5,), (1, 3, 3), (3, 2)],
)
NN_INVALID = dict(
    model=["transformer", 3],
    hidden_features=[0, -2, 2.5, "8"],
    num_layers=[-1, 1.5],
    time_embedding_dim=[0, 3, -4],
    embedding_net=["not a module"],
    z_score_theta=["foo"],
    z_score_x=["transform_to_unconstrained"],
    schedule=[{"T": 5.0}],
    num_steps=[0, 2.0],
    density=[1, "yes"],
)


@settings(max_examples=200, **PROFILE)
@given(kwargs=mostly_valid(NN_VALID, NN_INVALID))
@example(kwargs=dict(hidden_features=0))  # failed inside torch's reshape
@example(kwargs=dict(time_embedding_dim=0))  # divided by zero inside sbi
@example(kwargs=dict(z_score_theta="foo"))  # sbi's z-scoring error did not name it
def test_consistency_nn_arguments(kwargs):
    kwargs = {**{k: v[0] for k, v in NN_VALID.items()}, **kwargs}
    theta_shape, x_shape = kwargs.pop("theta_shape"), kwargs.pop("x_shape")
    embedding_net = kwargs.pop("embedding_net")
    width = math.prod(x_shape)
    kwargs["embedding_net"] = {
        "linear": nn.Sequential(nn.Flatten(), nn.Linear(width, 3)),
        None: None,
    }.get(embedding_net, embedding_net)
    build = run(lambda: consistency_nn(**kwargs), *kwargs)
    if build is None:
        return
    torch.manual_seed(0)
    theta, x = torch.randn(30, *theta_shape), torch.randn(30, *x_shape)
    estimator = run(lambda: build(theta, x), "theta", "x", "embedding_net")
    if estimator is None:
        return
    draws = estimator.sample((4,), x[:3])
    assert_draws(draws, (4, 3, *theta_shape))
    assert torch.isfinite(estimator.loss(theta, x)).all()
    if estimator.density:
        assert torch.isfinite(estimator.log_prob(draws, x[:3])).all()


def test_posterior_is_a_consistency_posterior(trained):
    assert isinstance(trained.build_posterior(), ConsistencyPosterior)


# ------------------------------------------------------------ log_prob (density)
@pytest.fixture(scope="module")
def density_posterior():
    from tests.test_density import GAUSSIAN_PRIOR, gaussian_posterior

    return gaussian_posterior(GAUSSIAN_PRIOR)


THETAS = st.sampled_from(
    ["one", "batch", "batch1", "empty", "wrong_dim", "nan", "inf", "numpy", "list", "str"]
)


def make_theta(kind):
    base = torch.tensor([[0.5, -0.2], [0.1, 0.1], [0.9, -0.5]])
    return {
        "one": base[0],
        "batch": base,
        "batch1": base[:1],
        "empty": base[:0],
        "wrong_dim": torch.zeros(2, 3),
        "nan": torch.tensor([[math.nan, 0.0]]),
        "inf": torch.tensor([[math.inf, 0.0]]),
        "numpy": base.numpy(),
        "list": base.tolist(),
        "str": "theta",
    }[kind]


@settings(max_examples=60, **PROFILE)
@given(theta=THETAS, x=XS, norm_posterior=st.booleans())
@example(theta="nan", x="one", norm_posterior=True)  # NaN theta gave a NaN log density
@example(theta="empty", x="one", norm_posterior=False)  # failed inside zuko
def test_log_prob(density_posterior, theta, x, norm_posterior):
    values = make_theta(theta)
    result = run(
        lambda: density_posterior.log_prob(
            values, x=make_x(x, False), norm_posterior=norm_posterior
        ),
        "theta",
        "x",
    )
    if result is None:
        return
    expected = torch.as_tensor(values).reshape(-1, 2).shape[0]
    assert result.shape == (expected,) and not torch.isnan(result).any()
