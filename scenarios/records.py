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


Columns = dict[str, np.ndarray]  # COLUMNS -> int64 values, one per record


def expand_runs(records: np.ndarray) -> Columns:
    """`records` as int64 columns, each NOOP_RUN record replaced by a START and an END per
    job of its run (core/recorder.py), stamped with its time and pid: per job a START,
    then its END (load_records sorts by time, stably). Built column by column: through a
    structured array, loading a redis-raw window's 1.7 million records took several
    times longer."""
    is_run = records["event"] == NOOP_RUN
    plain = records[~is_run] if is_run.any() else records
    columns = {c: [plain[c].astype(np.int64)] for c in COLUMNS}
    if is_run.any():
        runs = records[is_run]
        lengths = runs["attempt"].astype(np.int64)
        total = int(lengths.sum())
        offsets = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        ids = np.repeat(runs["job_id"].astype(np.int64), lengths) + offsets
        columns["job_id"].append(np.repeat(ids, 2))
        columns["event"].append(np.tile(np.array([START, END], dtype=np.int64), total))
        columns["attempt"].append(np.zeros(2 * total, dtype=np.int64))
        for name in ("pid", "t_ns"):
            columns[name].append(np.repeat(runs[name].astype(np.int64), 2 * lengths))
    return {c: np.concatenate(parts) for c, parts in columns.items()}


def load_file(path: Path) -> Columns:
    """Read one records file; a truncated tail (partial record) is dropped."""
    raw = path.read_bytes()
    whole = len(raw) - len(raw) % RECORD_DTYPE.itemsize
    return expand_runs(np.frombuffer(raw[:whole], dtype=RECORD_DTYPE))


def load_records(directory: Path) -> pd.DataFrame:
    """All records under `directory` (recursively), sorted by time."""
    files = [load_file(p) for p in sorted(Path(directory).rglob("*.bin"))]
    files = [f for f in files if len(f["t_ns"])]
    if not files:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in COLUMNS})
    frame = pd.DataFrame({c: np.concatenate([f[c] for f in files]) for c in COLUMNS},
                         copy=False)
    valid = frame["event"].isin([int(e) for e in Event])
    return frame[valid].sort_values("t_ns", kind="stable").reset_index(drop=True)


def as_of(frame: pd.DataFrame, end_ns: int | None) -> pd.DataFrame:
    """The records up to `end_ns`, the moment the driver closed the cell (None: all).
    Workers may still write after it (an RQ work horse finishing its job); a figure
    computed from the files later must be the one published."""
    return frame if end_ns is None else frame[frame["t_ns"] <= end_ns]

