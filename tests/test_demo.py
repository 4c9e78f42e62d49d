"""The demo: CMPE against NPE on the same two-moons simulations."""

import pytest

pytest.importorskip("sbibm")

from sbi_cmpe.benchmark.demo import main as demo  # noqa: E402


def test_demo_runs_and_reports_both_methods(capsys):
    results = demo(["--num-simulations", "300", "--cmpe-epochs", "2"])
    assert set(results) == {"CMPE", "NPE (maf)"}
    for r in results.values():
        assert 0.4 <= r["c2st"] <= 1.0 and r["train_s"] > 0 and r["sample_s"] > 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("CMPE ") for line in lines)
    assert any(line.startswith("NPE (maf) ") for line in lines)
