"""Load raw records (written by core.recorder) into a pandas DataFrame, a NOOP_RUN
record expanded into the STARTs and ENDs of its jobs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.recorder import END, NOOP_RUN, RECORD, START, Event

RECORD_DTYPE = np.dtype(
    [("job_id", "<i8"), ("event", "u1"), ("attempt", "u1"), ("pad", "V2"), ("pid", "<i4"),
     ("t_ns", "<i8")]
)
assert RECORD_DTYPE.itemsize == RECORD.size

COLUMNS = ["job_id", "event", "attempt", "pid", "t_ns"]


def expand_runs(records: np.ndarray) -> np.ndarray:
    """`records` with each NOOP_RUN record replaced by a START and an END per job of its
    run (core/recorder.py), stamped with its time and pid: per job a START, then its
    END (load_records sorts by time, stably)."""
    is_run = records["event"] == NOOP_RUN
    if not is_run.any():
        return records
    runs = records[is_run]
    lengths = runs["attempt"].astype(np.int64)
    firsts = np.repeat(runs["job_id"], lengths)
    offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    jobs = np.empty(2 * len(firsts), dtype=RECORD_DTYPE)
    for half, event in ((jobs[0::2], START), (jobs[1::2], END)):
        half["job_id"] = firsts + offsets
        half["event"] = event
        half["attempt"] = 0
        half["pid"] = np.repeat(runs["pid"], lengths)
        half["t_ns"] = np.repeat(runs["t_ns"], lengths)
    return np.concatenate([records[~is_run], jobs])


def load_file(path: Path) -> np.ndarray:
    """Read one records file; a truncated tail (partial record) is dropped."""
    raw = path.read_bytes()
    whole = len(raw) - len(raw) % RECORD_DTYPE.itemsize
    return expand_runs(np.frombuffer(raw[:whole], dtype=RECORD_DTYPE))


def load_records(directory: Path) -> pd.DataFrame:
    """All records under `directory` (recursively), sorted by time."""
    arrays = [load_file(p) for p in sorted(Path(directory).rglob("*.bin"))]
    arrays = [a for a in arrays if len(a)]
    if not arrays:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in COLUMNS})
    merged = np.concatenate(arrays)
    frame = pd.DataFrame({c: merged[c].astype("int64") for c in COLUMNS})
    valid = frame["event"].isin([int(e) for e in Event])
    return frame[valid].sort_values("t_ns", kind="stable").reset_index(drop=True)


def times_of(frame: pd.DataFrame, event: Event) -> pd.Series:
    """First time of `event` per job id."""
    rows = frame[frame["event"] == int(event)]
    return rows.groupby("job_id")["t_ns"].min()
