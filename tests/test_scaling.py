"""The scaling suite's dimension sweep: W2, the task's exact posterior and a smoke run."""

import csv
import math

import pytest
import torch

from sbi_cmpe.benchmark.__main__ import main
from sbi_cmpe.benchmark.scaling import (
    SCALING_COLUMNS,
    exact_posterior,
    gaussian_w2,
    linear_gaussian_task,
)


def test_gaussian_w2():
    mean = torch.tensor([0.3, -1.0, 2.0])
    a = torch.randn(3, 3)
    cov = a @ a.T + 0.1 * torch.eye(3)
    assert gaussian_w2(mean, cov, mean, cov) == pytest.approx(0.0, abs=1e-6)
    # 1-d closed form: W2² = (m1 − m2)² + (s1 − s2)².
    w2 = gaussian_w2(torch.tensor([1.0]), torch.tensor([[4.0]]), torch.zeros(1), torch.eye(1))
    assert w2**2 == pytest.approx(1.0**2 + (2.0 - 1.0) ** 2)
    # Diagonal covariances: the sum of the 1-d terms.
    m2, sd1, sd2 = torch.tensor([0.0, 0.5, 1.0]), torch.tensor([1.0, 2.0, 0.5]), torch.ones(3)
    expected = (mean - m2).square().sum() + (sd1 - sd2).square().sum()
    w2 = gaussian_w2(mean, torch.diag(sd1**2), m2, torch.diag(sd2**2))
    assert w2**2 == pytest.approx(expected.item())
    assert gaussian_w2(mean, cov, mean + 0.01, cov) > 0
    assert gaussian_w2(mean, cov, mean, 1.1 * cov) > 0


def test_reference_posterior_is_the_conjugate_update():
    task = linear_gaussian_task(2)
    assert task.name == "linear_gaussian_d2"
    x_o = task.observation(1)  # (1, 2)
    assert torch.equal(x_o, task.observation(1)) and not torch.equal(x_o, task.observation(2))
    # Prior N(0, 1), likelihood N(theta + 0.5, sd²) per dimension, sd = 0.1 and 1.0.
    var = torch.tensor([0.1, 1.0]) ** 2
    mean = (x_o[0] - 0.5) / (1 + var)
    posterior = exact_posterior(2, x_o)
    assert torch.allclose(posterior.mean, mean, atol=1e-5)
    assert torch.allclose(posterior.covariance_matrix, torch.diag(var / (1 + var)), atol=1e-6)
    draws = task.reference_samples(1, 20_000)
    assert torch.equal(draws, task.reference_samples(1, 20_000))
    assert torch.allclose(draws.mean(0), mean, atol=0.02)


def test_quick_scaling_run_and_resume(tmp_path):
    args = ["--suite", "scaling", "--quick", "--out", str(tmp_path), "--no-progress"]
    csv_path = main(args + ["--methods", "cmpe", "npe_maf"])
    with open(csv_path) as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == SCALING_COLUMNS
        rows = list(reader)
    assert [(r["dim"], r["method"], r["observation"]) for r in rows] == [
        ("2", "cmpe", "1"),
        ("2", "npe_maf", "1"),
        ("4", "cmpe", "1"),
        ("4", "npe_maf", "1"),
    ]
    for r in rows:
        assert r["task"] == f"linear_gaussian_d{r['dim']}" and r["budget"] == "300"
        assert r["num_draws"] == "500" and r["batched_num_x"] == "20"
        assert (r["num_steps"] != "") == (r["method"] == "cmpe")
        for column in ("w2", "mean_err", "sd_err", "sample_time_10k_s", "batched_time_s"):
            assert float(r[column]) > 0, column
        assert 0.4 <= float(r["c2st"]) <= 1.0
        assert math.isfinite(float(r["tarp_atc"])) and 0 <= float(r["tarp_ks_pvalue"]) <= 1
    for name in ("results.md", "w2_vs_dim.png", "sampling_time_vs_dim.png"):
        assert (tmp_path / name).exists()
    assert "| 4 | 300 | NPE-maf |" in (tmp_path / "results.md").read_text()
    # Resume: a second run finds every row done and adds none.
    main(args + ["--methods", "cmpe", "npe_maf"])
    with open(csv_path) as f:
        assert len(list(csv.DictReader(f))) == len(rows)


def test_options_of_the_other_suite_are_refused():
    with pytest.raises(SystemExit):
        main(["--suite", "scaling", "--tasks", "two_moons"])
    with pytest.raises(SystemExit):
        main(["--dims", "2"])
