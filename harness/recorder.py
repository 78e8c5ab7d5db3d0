"""Append-only binary event records, one file per writing process.

Stdlib only: this module runs inside every backend's environment (workers,
drivers). Each record is a fixed 24-byte struct written with a single
os.write on an O_APPEND descriptor, so a record is either fully on disk or
absent, even when the writer is SIGKILLed right after the call returns.
"""

from __future__ import annotations

import enum
import os
import struct
import time
from pathlib import Path

RECORD = struct.Struct("<qBBxxiq")  # job_id, event, attempt, pad, pid, t_ns
RECORDS_DIR_ENV = "QB_RECORDS_DIR"


class Event(enum.IntEnum):
    """What happened to a job. Values are part of the on-disk format."""

    INTENDED = 1  # the schedule said: send now
    SENT = 2  # the enqueue call returned
    START = 3  # a worker began executing the job
    END = 4  # the job finished without error
    ERROR = 5  # the job raised


class Recorder:
    """Writes records for the current process into <dir>/<pid>.bin.

    The file is (re)opened lazily whenever the pid changes, so a recorder
    created before a fork writes to the child's own file after it.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._fd = -1
        self._pid = -1

    def _descriptor(self) -> int:
        pid = os.getpid()
        if pid != self._pid:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"{pid}.bin"
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            self._pid = pid
        return self._fd

    def record(self, job_id: int, event: Event, t_ns: int | None = None, attempt: int = 0) -> None:
        if t_ns is None:
            t_ns = time.monotonic_ns()
        os.write(self._descriptor(), RECORD.pack(job_id, event, attempt, self._pid, t_ns))

    def record_many(self, rows: list[tuple[int, Event, int]]) -> None:
        """Write (job_id, event, t_ns) rows in one call; used by producers."""
        fd = self._descriptor()
        data = b"".join(RECORD.pack(j, e, 0, self._pid, t) for j, e, t in rows)
        os.write(fd, data)


_process_recorder: Recorder | None = None


def process_recorder() -> Recorder:
    """The recorder of a worker process, located by the QB_RECORDS_DIR variable."""
    global _process_recorder
    if _process_recorder is None:
        directory = os.environ.get(RECORDS_DIR_ENV)
        if not directory:
            raise RuntimeError(f"{RECORDS_DIR_ENV} is not set in this worker's environment")
        _process_recorder = Recorder(directory)
    return _process_recorder


def count_events(directory: Path, offsets: dict[Path, int], events: frozenset[int]) -> int:
    """Count new records with an event in `events` since the last call.

    `offsets` remembers how far each file was read; a trailing partial
    record (a writer killed mid-write cannot produce one, but a reader may
    race a writer) is left for the next call.
    """
    found = 0
    if not directory.exists():
        return 0
    for path in directory.glob("*.bin"):
        start = offsets.get(path, 0)
        with open(path, "rb") as handle:
            handle.seek(start)
            data = handle.read()
        whole = len(data) - len(data) % RECORD.size
        for _job, event, _a, _pid, _t in RECORD.iter_unpack(data[:whole]):
            if event in events:
                found += 1
        offsets[path] = start + whole
    return found
