"""The summarizer of `sbi_cmpe.benchmark.report`: mean C2ST per seed and over seeds."""

import csv
import json

import pytest

from sbi_cmpe.benchmark.report import main, read_rows, seed_summary, seed_summary_text
from sbi_cmpe.benchmark.run import COLUMNS


def _row(method, seed, observation, c2st, num_steps="default", train_time_s=10.0):
    return dict(
        task="two_moons",
        budget=1000,
        method=method,
        seed=seed,
        observation=observation,
        num_steps=num_steps,
        c2st=c2st,
        train_time_s=train_time_s,
    )


@pytest.fixture
def files(tmp_path):
    """A results CSV with seeds 0 and 3 and a step-sweep row, and a sweep file with seed 1 and
    a failed job."""
    csv_path = tmp_path / "results.csv"
    rows = [
        _row("cmpe", 0, 1, 0.6),
        _row("cmpe", 0, 2, 0.7),
        _row("cmpe", 0, 1, 0.9, num_steps="1"),  # step sweep: left out
        _row("cmpe", 3, 1, 0.8, train_time_s=20.0),
        _row("npe_nsf", 0, 1, 0.5),
    ]
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    jsonl_path = tmp_path / "sweep.jsonl"
    lines = [
        {k: str(v) for k, v in _row("cmpe", 1, 6, 0.55).items()},
        dict(task="two_moons", budget="1000", method="cmpe:steps=5", note="error 'boom'"),
    ]
    jsonl_path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return csv_path, jsonl_path


def test_seed_summary_means_per_seed_and_over_rows(files):
    summary = seed_summary(read_rows(files))
    cmpe = summary[("two_moons", 1000, "cmpe")]
    assert list(cmpe["seeds"]) == [0, 1, 3]
    assert cmpe["seeds"][0]["c2st"] == pytest.approx(0.65)
    assert cmpe["seeds"][0]["n"] == 2
    assert cmpe["seeds"][3]["train_time_s"] == pytest.approx(20.0)
    assert cmpe["c2st"] == pytest.approx((0.6 + 0.7 + 0.55 + 0.8) / 4)
    assert cmpe["n"] == 4
    assert ("two_moons", 1000, "cmpe:steps=5") not in summary  # the failed job


def test_seed_summary_filters(files):
    rows = read_rows(files)
    assert set(seed_summary(rows, min_seeds=2)) == {("two_moons", 1000, "cmpe")}
    assert set(seed_summary(rows, methods=["npe_nsf"])) == {("two_moons", 1000, "npe_nsf")}


def test_text_and_markdown(files):
    summary = seed_summary(read_rows(files), min_seeds=2)
    line = seed_summary_text(summary)
    assert line.startswith("two_moons 1000 cmpe | seed 0: 0.650 (10.00 s), seed 1: 0.550")
    assert line.endswith("mean 0.662 (n=4)")
    table = seed_summary_text(summary, markdown=True).splitlines()
    assert table[0].startswith("| task | budget | method |")
    assert table[2].startswith("| two_moons | 1,000 | cmpe | seed 0: 0.650")


def test_command_line(files, capsys):
    csv_path, jsonl_path = files
    text = main([str(csv_path), str(jsonl_path), "--min-seeds", "2"])
    out = capsys.readouterr().out
    assert "failed: two_moons 1000 cmpe:steps=5: error 'boom'" in out
    assert text in out
    assert "npe_nsf" not in text
