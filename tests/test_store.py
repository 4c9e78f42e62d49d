"""The results CSV and the folder lock."""

import pytest

from sbi_cmpe.benchmark.store import COLUMNS, FolderLock, append_rows, completed_rows


def row(i):
    return {c: f"{c}{i}" for c in COLUMNS}


def test_rows_round_trip(tmp_path):
    path = tmp_path / "results.csv"
    append_rows(path, [row(1), row(2)])
    append_rows(path, [row(3)])
    assert [r["task"] for r in completed_rows(path)] == ["task1", "task2", "task3"]
    assert completed_rows(tmp_path / "missing.csv") == []


@pytest.mark.parametrize(
    "tail",
    ["task9,budg", "task9," + ",".join("x" * 3 for _ in COLUMNS[1:]) + '"', "\n,,,\n"],
)
def test_a_cut_off_last_row_is_removed_with_a_warning(tmp_path, tail):
    path = tmp_path / "results.csv"
    append_rows(path, [row(1), row(2)])
    with path.open("a") as f:
        f.write(tail)
    with pytest.warns(UserWarning, match="removed an incomplete last row"):
        rows = completed_rows(path)
    assert [r["task"] for r in rows] == ["task1", "task2"]
    append_rows(path, [row(3)])  # the file is whole again
    assert [r["task"] for r in completed_rows(path)] == ["task1", "task2", "task3"]


def test_a_cut_off_header_leaves_an_empty_file(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text("task,bud")
    with pytest.warns(UserWarning, match="incomplete"):
        assert completed_rows(path) == []
    append_rows(path, [row(1)])
    assert [r["task"] for r in completed_rows(path)] == ["task1"]


def test_a_second_writer_is_refused_until_the_first_is_done(tmp_path):
    with FolderLock(tmp_path):
        with pytest.raises(RuntimeError, match="Another benchmark run \\(pid \\d+\\) is writing"):
            with FolderLock(tmp_path):
                pass
    with FolderLock(tmp_path):  # released
        pass


def test_a_csv_of_other_columns_is_refused_not_repaired(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text("task,budget,where\ntwo_moons,1000,here\n")
    with pytest.raises(ValueError, match="not a results CSV of this benchmark"):
        completed_rows(path)
    assert path.read_text() == "task,budget,where\ntwo_moons,1000,here\n"
