"""The scaling suite's images: the digits task, its prior, its metrics and a smoke run."""

import csv

import pytest
import torch
from sbi.neural_nets.embedding_nets import CNNEmbedding
from sbi.utils.sbiutils import mcmc_transform

from sbi_cmpe.benchmark.__main__ import main
from sbi_cmpe.benchmark.images import (
    IMAGE_COLUMNS,
    DigitsPrior,
    blur,
    blur_and_noise,
    digits_task,
    exact_posterior_draws,
    image_metrics,
    split_digits,
)
from sbi_cmpe.benchmark.methods import train_method


def test_split_holds_out_test_digits():
    train, test = split_digits(100)
    assert train.shape == (1_697, 64) and test.shape == (100, 64)
    assert 0 <= train.min() and train.max() <= 1
    # No test digit is a training digit.
    assert not (test[:, None, :] == train[None, :, :]).all(-1).any()
    task = digits_task(100)
    x_o = task.observation(3)
    assert x_o.shape == (1, 8, 8) and torch.equal(x_o, task.observation(3))
    assert not torch.equal(x_o, task.observation(4))


def test_simulator_blurs_with_the_binomial_kernel_and_adds_noise():
    image = torch.zeros(1, 64)
    image[0, 3 * 8 + 4] = 1.0  # one pixel at row 3, column 4
    blurred = blur(image)[0]  # (8, 8)
    row = torch.tensor([1.0, 2.0, 1.0])
    assert torch.allclose(blurred[2:5, 3:6], row[:, None] * row[None, :] / 16)
    assert blurred.sum() == pytest.approx(1.0) and (blurred[:2] == 0).all()
    torch.manual_seed(0)
    images = torch.rand(500, 64)
    noise = blur_and_noise(images) - blur(images)  # (500, 8, 8)
    assert noise.mean().item() == pytest.approx(0.0, abs=0.01)
    assert noise.std().item() == pytest.approx(0.1, rel=0.02)


def test_digits_prior_samples_training_images_and_has_an_invertible_transform():
    images = torch.zeros(5, 64)
    images[:, 10] = torch.arange(5) / 4  # pixel 10 varies, the others are blank
    prior = DigitsPrior(images)
    draws = prior.sample((7, 3))
    assert draws.shape == (7, 3, 64)
    assert all((row == images).all(-1).any() for row in draws.reshape(-1, 64))
    assert torch.equal(prior.log_prob(draws), torch.zeros(7, 3))
    assert prior.stddev.min() == pytest.approx(1 / 16)
    transform = mcmc_transform(prior)  # raises if it cannot invert the blank pixels
    assert torch.allclose(transform(transform.inv(draws[0])), draws[0], atol=1e-5)


def test_exact_posterior_picks_the_training_image_of_a_noiseless_observation():
    train, _ = split_digits(100)
    x = blur(train[[5, 700]])  # (2, 8, 8), no noise
    draws = exact_posterior_draws(x, train, 50)  # (50, 2, 64)
    assert draws.shape == (50, 2, 64)
    assert (draws[:, 0] == train[5]).all() and (draws[:, 1] == train[700]).all()


def test_image_metrics_against_known_answers():
    torch.manual_seed(0)
    truth = torch.rand(4, 64)
    exact = truth + 0.1 * torch.randn(20_000, 4, 64)  # draws centred on the truth
    metrics = image_metrics(exact, truth)
    assert metrics["rmse"] == pytest.approx(0.0, abs=0.005)
    assert metrics["coverage_50"] == 1.0 and metrics["coverage_90"] == 1.0
    shifted = image_metrics(exact + 0.3, truth)
    assert shifted["rmse"] == pytest.approx(0.3, abs=0.005)
    # 0.3 is 3 sd from the centre: outside the 90% interval (±1.64 sd) everywhere.
    assert shifted["coverage_50"] == 0.0 and shifted["coverage_90"] == 0.0
    # Calibrated draws: the truth comes from the same distribution as the draws.
    calibrated = image_metrics(torch.randn(2_000, 200, 64), torch.randn(200, 64))
    assert calibrated["coverage_50"] == pytest.approx(0.5, abs=0.02)
    assert calibrated["coverage_90"] == pytest.approx(0.9, abs=0.02)


@pytest.mark.parametrize("method", ["cmpe", "npe_nsf", "fmpe"])
def test_every_method_gets_the_cnn_embedding(method):
    task = digits_task(10)
    torch.manual_seed(0)
    theta = task.prior.sample((100,))
    trained = train_method(method, task.prior, theta, task.simulator(theta), 1, task.embedding)
    posterior = trained.posterior
    net = getattr(posterior, "vector_field_estimator", None) or posterior.posterior_estimator
    assert any(isinstance(m, CNNEmbedding) for m in net.modules())


def test_quick_images_run_and_resume(tmp_path):
    args = ["--suite", "images", "--quick", "--out", str(tmp_path), "--no-progress"]
    csv_path = main(args + ["--methods", "exact", "cmpe", "fmpe"])
    with open(csv_path) as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == IMAGE_COLUMNS
        rows = list(reader)
    assert [(r["budget"], r["method"]) for r in rows] == [
        ("300", "exact"),
        ("300", "cmpe"),
        ("300", "fmpe"),
    ]
    for r in rows:
        assert r["task"] == "digits_test10" and r["num_test"] == "10"
        assert (r["num_steps"] != "") == (r["method"] == "cmpe")
        assert (r["batched_time_s"] != "") == (r["method"] != "exact")
        assert 0 < float(r["rmse"]) < 1
        assert 0 <= float(r["coverage_50"]) <= float(r["coverage_90"]) <= 1
    for name in ("results.md", "rmse_vs_budget.png"):
        assert (tmp_path / name).exists()
    assert "| digits_test10 | 300 | FMPE |" in (tmp_path / "results.md").read_text()
    main(args + ["--methods", "exact", "cmpe", "fmpe"])  # resume: every row is done
    with open(csv_path) as f:
        assert len(list(csv.DictReader(f))) == len(rows)


@pytest.mark.parametrize(
    "option", [["--dims", "2"], ["--observations", "1"], ["--tasks", "two_moons"]]
)
def test_options_of_other_suites_are_refused_by_images(option, capsys):
    with pytest.raises(SystemExit):
        main(["--suite", "images", *option])
    assert f"{option[0]}: not an option of --suite images" in capsys.readouterr().err
