"""The results CSV of a benchmark folder and its lock: one writer, whole rows, no duplicates.

A run may be killed at any moment (SIGKILL, a lost node). The CSV stays usable because

- rows are only ever appended by one process (the client of a distributed run), all rows of
  a job in one write that is flushed to disk before the next job's;
- a line cut off by a kill (no final newline, or the wrong number of fields) is found when
  the CSV is read again and removed, so that its job runs again (`completed_rows`);
- a second run on the same folder refuses to start while the first holds its lock
  (`FolderLock`), instead of interleaving rows.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import io
import math
import os
import warnings
from pathlib import Path
from statistics import mean
from typing import Dict, Iterable, List, Sequence

__all__ = ["COLUMNS", "FolderLock", "append_rows", "column_mean", "completed_rows", "iter_rows"]

COLUMNS = [
    "task",
    "budget",
    "method",
    "seed",
    "observation",
    "num_steps",
    "c2st",
    "num_draws",
    "train_time_s",
    "epochs",
    "optimizer_steps",
    "sample_time_10k_s",
    "batched_time_s",
    "batched_draws",
    "batched_num_x",
    "calls_per_draw",
    "note",
    "torch_threads",
    "sbi",
    "torch",
    "sbi_cmpe",
    "machine",
    "date",
]


class FolderLock:
    """An exclusive lock on a benchmark folder (`<out>/.lock`), held while a run writes.

    The operating system drops the lock when its process ends, also by SIGKILL, so a killed
    run never blocks the next one.

    Arguments:
        out: The benchmark folder.
    """

    def __init__(self, out: str | Path) -> None:
        self.path = Path(out) / ".lock"
        self._file: io.TextIOWrapper | None = None

    def __enter__(self) -> FolderLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            raise RuntimeError(
                f"Another benchmark run ({holder}) is writing to {self.path.parent}; wait "
                "for it to finish, or give this run another --out."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        self._file = handle
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def _repair(csv_path: Path, columns: Sequence[str] = COLUMNS) -> None:
    """Cut off a last row that a killed run left incomplete, with a warning.

    Only the end of the file is touched: a last line without its newline, or with another
    number of fields than the header. A file whose header is not `columns` is refused, not
    repaired. The repaired file replaces the old one atomically.
    """
    data = csv_path.read_bytes()
    if not data:
        return
    lines = data.decode().split("\n")  # the last item is "" when the file ends in "\n"
    header = lines[0]
    if not data.endswith(b"\n") and len(lines) == 1:  # a cut-off header: nothing else
        kept: list = []
    else:
        if next(csv.reader([header])) != list(columns):
            raise ValueError(
                f"{csv_path} is not a results CSV of this benchmark (its header has other "
                "columns); give the run another --out."
            )
        kept = lines[:-1]  # drops the "" after the last newline, or the cut-off line
        if len(kept) > 1 and len(next(csv.reader([kept[-1]]))) != len(columns):
            kept = kept[:-1]
    removed = len(data) - len("".join(line + "\n" for line in kept).encode())
    if removed == 0:
        return
    warnings.warn(
        f"{csv_path}: removed an incomplete last row ({removed} bytes) left by an "
        "interrupted run; its job will run again.",
        stacklevel=3,
    )
    partial = csv_path.with_name(f".{csv_path.name}.{os.getpid()}.partial")
    partial.write_bytes("".join(line + "\n" for line in kept).encode())
    os.replace(partial, csv_path)


def completed_rows(csv_path: str | Path, columns: Sequence[str] = COLUMNS) -> List[Dict[str, str]]:
    """The complete rows of a results CSV (after removing a cut-off last line).

    Call it only while holding the folder's `FolderLock`: it may rewrite the file.

    Arguments:
        csv_path: The results CSV; a missing file has no rows.
        columns: The columns its header must have.

    Returns:
        The rows, as dicts of strings.
    """
    csv_path = Path(csv_path)
    if not csv_path.exists():
        return []
    _repair(csv_path, columns)
    return list(iter_rows(csv_path))


def append_rows(
    csv_path: str | Path, rows: Sequence[Dict], columns: Sequence[str] = COLUMNS
) -> None:
    """Append `rows` in one write (with a header if the file is new), flushed to disk.

    Arguments:
        csv_path: The results CSV.
        rows: Dicts with (at least) the keys of `columns`.
        columns: The CSV's columns, in order.
    """
    csv_path = Path(csv_path)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    new = not csv_path.exists() or csv_path.stat().st_size == 0
    if new:
        writer.writeheader()
    writer.writerows(rows)
    with csv_path.open("a", newline="") as f:
        f.write(buffer.getvalue())
        f.flush()
        os.fsync(f.fileno())


def iter_rows(csv_path: str | Path) -> Iterable[Dict[str, str]]:
    """Rows of a results CSV, as dicts of strings."""
    with Path(csv_path).open() as f:
        yield from csv.DictReader(f)


def column_mean(rows: Sequence[Dict[str, str]], column: str) -> float:
    """The mean of a numeric column over rows, skipping empty and "nan" cells (NaN if none)."""
    values = [float(r[column]) for r in rows if r[column] not in ("", "nan")]
    return mean(values) if values else math.nan
