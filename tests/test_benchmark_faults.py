"""Fault injection: benchmark runs killed mid-row, corrupted cache files, two runs on one
folder, and Dask workers killed mid-job. Rows are compared on their columns that do not
depend on wall time (`tests.benchmark_helpers.STABLE`)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sbi_cmpe.benchmark import run_benchmark
from sbi_cmpe.benchmark.cache import posterior_path, simulations_path
from sbi_cmpe.benchmark.store import COLUMNS, FolderLock
from tests.benchmark_helpers import stable_rows, toy_settings, toy_task

ROOT = Path(__file__).parent.parent
DRIVER = """
import sys
sys.path.insert(0, {root!r})
from pathlib import Path
from sbi_cmpe.benchmark import run_benchmark
from tests.benchmark_helpers import toy_settings, toy_task
task = toy_task(stall_marker=Path({marker!r}))
run_benchmark(toy_settings(Path({out!r}), task), progress=False)
"""


@pytest.fixture(scope="module")
def clean_rows(tmp_path_factory):
    out = tmp_path_factory.mktemp("clean")
    return stable_rows(run_benchmark(toy_settings(out, toy_task()), progress=False))


def test_sigkill_mid_job_then_resume_loses_and_duplicates_nothing(tmp_path, clean_rows):
    out, marker = tmp_path / "out", tmp_path / "stalled"
    script = DRIVER.format(root=str(ROOT), marker=str(marker), out=str(out))
    process = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path)
    deadline = time.time() + 120
    while not marker.exists():  # inside the first job, after its first row was measured
        assert process.poll() is None and time.time() < deadline, "driver ended early"
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    csv_path = out / "results.csv"
    assert not csv_path.exists()  # the killed job had not written its rows
    # What a kill in the middle of a write leaves: a cut-off row and half-written files.
    csv_path.write_text(",".join(COLUMNS) + "\ntoy,200,cm")
    for path in (
        simulations_path(out / "cache", "toy", 200, 0),
        posterior_path(out / "cache", "toy", 200, "cmpe", 0),
    ):
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    with pytest.warns(UserWarning) as record:
        run_benchmark(toy_settings(out, toy_task()), progress=False)
    messages = " ".join(str(w.message) for w in record)
    assert "removed an incomplete last row" in messages
    assert messages.count("is unreadable") == 2
    assert len(list((out / "cache").glob("*.unreadable"))) == 2  # kept aside
    assert stable_rows(csv_path) == clean_rows


def test_a_second_run_on_the_same_folder_is_refused(tmp_path):
    with FolderLock(tmp_path):
        with pytest.raises(RuntimeError, match="Another benchmark run"):
            run_benchmark(toy_settings(tmp_path, toy_task()), progress=False)


def test_a_failing_job_is_reported_and_the_others_finish(tmp_path):
    settings = toy_settings(tmp_path, toy_task(always_fail=True))
    settings.observations = [1, 2]
    with pytest.raises(RuntimeError, match="2 of 2 jobs failed") as info:
        run_benchmark(settings, progress=False)
    assert "injected failure" in str(info.value)
    settings.observations = [1]  # what does not fail still runs
    rows = stable_rows(run_benchmark(settings, progress=False))
    assert len(rows) == 3  # cmpe (default and 1 step) and npe_maf at observation 1


def test_a_job_that_fails_once_is_retried(tmp_path, clean_rows):
    marker = tmp_path / "failed"
    path = run_benchmark(
        toy_settings(tmp_path / "out", toy_task(fail_marker=marker)), progress=False
    )
    assert marker.exists()
    assert stable_rows(path) == clean_rows


@pytest.mark.slow
def test_dask_workers_give_the_sequential_rows_and_retry_a_killed_job(tmp_path, clean_rows):
    pytest.importorskip("distributed")
    marker = tmp_path / "killed"
    task = toy_task(kill_marker=marker)
    path = run_benchmark(toy_settings(tmp_path / "out", task), progress=False, workers=2)
    assert marker.exists()  # one worker was killed mid-job, and its job ran again
    assert stable_rows(path) == clean_rows
