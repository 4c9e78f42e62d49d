"""A smoke run of the benchmark (the full run is not part of the tests)."""

import csv
import tempfile

import pytest
import torch
from sbi.utils import BoxUniform

from sbi_cmpe.benchmark import Settings, Task, run_benchmark
from sbi_cmpe.benchmark.__main__ import main
from sbi_cmpe.benchmark.report import markdown_table
from sbi_cmpe.benchmark.timing import main as timing_main
from sbi_cmpe.benchmark.timing import time_cached_posteriors, time_training, timing_table

pytest.importorskip("sbibm")


def test_quick_cli_run_and_resume(tmp_path, monkeypatch):
    # Without --out, a smoke run writes to a scratch folder, never to benchmarks/results.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "scratch"))
    csv_path = main(["--quick", "--methods", "cmpe", "npe_maf"])
    out = tmp_path / "scratch" / "sbi_cmpe_quick" / "sbibm"
    assert csv_path == out / "results.csv" and not (tmp_path / "benchmarks").exists()
    rows = list(csv.DictReader(open(csv_path)))
    # CMPE: default steps + sweep (1, 2) on observation 1; NPE: default.
    assert [(r["method"], r["num_steps"]) for r in rows] == [
        ("cmpe", "default"),
        ("cmpe", "1"),
        ("cmpe", "2"),
        ("npe_maf", "default"),
    ]
    for r in rows:
        assert 0.4 <= float(r["c2st"]) <= 1.0
        assert float(r["train_time_s"]) > 0 and float(r["sample_time_10k_s"]) > 0
    # The default rows sample in the steps that training chose, and say what it cost.
    steps = rows[0]["calls_per_draw"]
    assert steps in {"1", "2", "3", "5", "10"} and rows[1]["calls_per_draw"] == "1"
    assert rows[0]["note"].startswith(f"steps {steps} chosen in ")
    assert (out / "c2st_vs_budget.png").exists()
    assert (out / "train_time_vs_budget.png").exists()
    assert (out / "c2st_vs_sampling_time.png").exists()
    assert "| two_moons | 300 | CMPE |" in (out / "results.md").read_text()
    # Same simulations for every method, cached once.
    assert len(list((out / "cache").glob("sims_*.pt"))) == 1
    # A second run finds everything done and adds nothing.
    main(["--quick", "--out", str(out), "--methods", "cmpe", "npe_maf"])
    assert len(list(csv.DictReader(open(csv_path)))) == len(rows)
    # The cached posteriors can be timed again, back to back.
    timings = time_cached_posteriors(
        out, num_draws=200, batched_draws=10, batched_num_x=3, repeats=1
    )
    assert sorted(r["method"] for r in timings) == ["cmpe", "npe_maf"]
    assert all(r["sample_s"] > 0 and r["batched_s"] > 0 for r in timings)
    assert "| two_moons | 300 | CMPE |" in timing_table(timings)
    table = timing_main(["--out", str(out), "--no-batched", "--repeats", "1"])
    assert all(line.endswith("| n/a |") for line in table.splitlines()[2:])
    assert (out / "timing.md").read_text().strip() == table
    # Training again, back to back on the cached simulations.
    table = timing_main(
        ["--out", str(out), "--training", "--methods", "cmpe", "npe_maf"]
        + ["--max-num-epochs", "2"]
    )
    lines = table.splitlines()
    assert lines[0] == "| task | budget | CMPE (s) | NPE-maf (s) | CMPE / NPE-maf |"
    assert len(lines) == 3 and lines[2].startswith("| two_moons | 300 | ")
    assert float(lines[2].strip("| ").split(" | ")[-1]) > 0  # the ratio
    runs = time_training(out, ["cmpe"], tasks=["two_moons"], max_num_epochs=2)
    assert [(r["method"], r["epochs"]) for r in runs] == [("cmpe", 2)]
    assert runs[0]["train_s"] > 0 and runs[0]["steps"] > 0
    with pytest.raises(FileNotFoundError, match="sims_<task>_<budget>_3.pt"):
        time_training(out, ["cmpe"], seed=3)
    with pytest.raises(SystemExit):
        timing_main(["--out", str(out), "--tasks", "two_moons"])  # needs --training
    assert (out / "training_timing.md").read_text().strip() == table


def test_custom_task_is_pluggable(tmp_path):
    """Any sbi-style prior and simulator runs; C2ST against its reference sampler."""
    prior = BoxUniform(-torch.ones(2), torch.ones(2))
    task = Task(
        name="shifted_box",
        prior=prior,
        simulator=lambda theta: theta + 0.1 * torch.randn_like(theta),
        observation=lambda i: torch.zeros(1, 2),
        reference_samples=lambda i, n: torch.randn(n, 2) * 0.1,
    )
    settings = Settings(
        tasks=[task],
        budgets=[200],
        methods=["cmpe", "cmpe:hidden_features=16,num_steps=2"],
        observations=[1],
        out=tmp_path,
        num_draws=200,
        sweep_steps=[1],
        max_num_epochs=2,
        batched_draws=10,
        batched_num_x=3,
    )
    run_benchmark(settings, progress=False)
    assert "| shifted_box | 200 | CMPE |" in markdown_table(tmp_path / "results.csv")
    # A variant's rows count its network calls per draw as the default's do.
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    calls = {(r["method"], r["num_steps"]): r["calls_per_draw"] for r in rows}
    assert calls[("cmpe:hidden_features=16,num_steps=2", "default")] == "2"
    assert calls[("cmpe:hidden_features=16,num_steps=2", "1")] == calls[("cmpe", "1")] == "1"


def test_cmpe_variants_parse_and_baselines_refuse_options():
    from sbi_cmpe.benchmark.methods import parse_variant

    assert parse_variant("cmpe:hidden_features=128,steps=5000,model=ada_mlp") == (
        "cmpe",
        {"hidden_features": 128, "steps": 5000, "model": "ada_mlp"},
    )
    assert parse_variant("npe_nsf") == ("npe_nsf", {})
    with pytest.raises(ValueError, match="baselines run at sbi's defaults"):
        parse_variant("fmpe:hidden_features=3")
    with pytest.raises(ValueError, match="not key=value"):
        parse_variant("cmpe:width")


def test_cmpe_variant_trains_with_its_options():
    from sbi_cmpe.benchmark.methods import train_method

    prior = BoxUniform(-torch.ones(2), torch.ones(2))
    theta = prior.sample((300,))
    trained = train_method(
        "cmpe:hidden_features=16,num_layers=1,steps=30,num_steps=3",
        prior,
        theta,
        theta + 0.1 * torch.randn_like(theta),
    )
    assert trained.posterior.num_steps == 3 == trained.calls_per_draw
    assert trained.optimizer_steps == 30  # 15 epochs of 2 batches of 128 (270 training sims)
    assert trained.posterior.estimator.net.output_layer.in_features == 16


def _write_rows(path, rows):
    from sbi_cmpe.benchmark.run import COLUMNS

    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, restval="")
        writer.writeheader()
        for task, budget, method, c2st, train, draws, batched in rows:
            writer.writerow(
                dict(
                    task=task,
                    budget=budget,
                    method=method,
                    seed=0,
                    observation=1,
                    num_steps="default",
                    c2st=c2st,
                    train_time_s=train,
                    epochs=10,
                    sample_time_10k_s=draws,
                    batched_time_s=batched,
                )
            )


def test_targets_and_before_after_tables(tmp_path):
    from sbi_cmpe.benchmark.report import before_after_table, targets_table

    after, before = tmp_path / "after.csv", tmp_path / "before.csv"
    _write_rows(
        after,
        [
            ("two_moons", 1000, "cmpe", 0.60, 20.0, 0.10, 2.0),
            ("two_moons", 1000, "npe_nsf", 0.70, 10.0, 0.20, 4.0),
            ("two_moons", 1000, "npe_maf", 0.80, 10.0, 0.05, 1.0),
            ("two_moons", 1000, "fmpe", 0.65, 5.0, 5.00, ""),
        ],
    )
    _write_rows(before, [("two_moons", 1000, "cmpe", 0.75, 100.0, 0.30, 3.0)])
    line = targets_table(after).splitlines()[-1]
    # C2ST minus the better of NPE-nsf and FMPE; CMPE/NPE-maf times; FMPE/CMPE; CMPE/FMPE train
    assert (
        line
        == "| two_moons | 1,000 | 0.600 | 0.700 | 0.650 | -0.050 | 2.00 | 2.00 | 50.00 | 4.00 |"
    )
    line = before_after_table(before, after).splitlines()[-1]
    assert line == "| two_moons | 1,000 | 0.750 | 0.600 | 100 | 20 | 0.300 | 0.100 |"
