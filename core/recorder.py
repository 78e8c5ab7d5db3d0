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
from collections.abc import Sequence
from pathlib import Path

from core.envnames import RECORDS_DIR_ENV

RECORD = struct.Struct("<qBBxxiq")  # job_id, event, attempt, pad, pid, t_ns
RECORD_PAIR = struct.Struct("<" + RECORD.format[1:] * 2)  # two records in one pack

# os.getpid() is a system call; it is cached here and refreshed in a forked child.
_pid = os.getpid()
# A process whose forked children run one job each (RQ's work horses) names its
# files after itself, so its children append to one file instead of one per job.
_file_owner: int | None = None


def _after_fork() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_after_fork)


def current_pid() -> int:
    return _pid


def file_pid() -> int:
    """The pid this process's record and count files are named after."""
    return _file_owner if _file_owner is not None else _pid


def share_files_with_forks() -> None:
    """Forked children of this process write into this process's files (records
    still carry the writer's own pid). Only for a parent that runs one child at
    a time, as RQ's Worker does with its work horses."""
    global _file_owner
    _file_owner = _pid


class Event(enum.IntEnum):
    """What happened to a job. Values are part of the on-disk format."""

    INTENDED = 1  # the schedule said: send now
    SENT = 2  # the enqueue call returned
    START = 3  # a worker began executing the job
    END = 4  # the job finished without error
    ERROR = 5  # the job raised


START, END = int(Event.START), int(Event.END)  # plain ints: packed per job


class Recorder:
    """Writes records for the current process into <dir>/<file_pid()>.bin.

    The file is (re)opened lazily whenever the pid changes, so a recorder
    created before a fork writes to the child's own file after it.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._fd = -1
        self._pid = -1

    def _descriptor(self) -> int:
        pid = _pid
        if pid != self._pid:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"{file_pid()}.bin"
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            self._pid = pid
        return self._fd

    def record(self, job_id: int, event: Event, t_ns: int | None = None, attempt: int = 0) -> None:
        if t_ns is None:
            t_ns = time.monotonic_ns()
        os.write(self._descriptor(), RECORD.pack(job_id, event, attempt, self._pid, t_ns))

    def record_noops(self, job_ids: Sequence[int]) -> None:
        """START and END of each of these noop jobs, all stamped now, in one write (the
        raw ceilings run a fetched batch so: two system calls per job would be most of a
        ceiling consumer's time, and a clock read and a pack per job 0.56 us of the
        0.23 us/job one stamp and a joined list cost)."""
        fd = self._descriptor()
        pid, t_ns, pack = self._pid, time.monotonic_ns(), RECORD_PAIR.pack
        os.write(fd, b"".join(
            [pack(job_id, START, 0, pid, t_ns, job_id, END, 0, pid, t_ns)
             for job_id in job_ids]))

    def record_many(self, rows: list[tuple[int, Event, int]]) -> None:
        """Write (job_id, event, t_ns) rows in one call; used by producers."""
        fd = self._descriptor()
        data = b"".join(RECORD.pack(j, e, 0, self._pid, t) for j, e, t in rows)
        os.write(fd, data)


# Job ids carry their cell: id // ID_SPAN is the cell's index in the run, so
# workers that outlive a cell (they serve a group of cells) still write each
# job's records into its own cell's folder, with nothing extra in the message.
ID_SPAN = 100_000_000
GATE_FILE = "gate.open"
_cell_dirs: dict[int, Path] = {}
_recorders: dict[int, Recorder] = {}


def cell_index(job_id: int) -> int:
    return job_id // ID_SPAN


def cell_dir_of(job_id: int) -> Path:
    """The folder of the job's cell: <QB_RECORDS_DIR>/<index:04d>-*/ (cached)."""
    index = cell_index(job_id)
    if index not in _cell_dirs:
        root = os.environ.get(RECORDS_DIR_ENV)
        if not root:
            raise RuntimeError(f"{RECORDS_DIR_ENV} is not set in this worker's environment")
        found = sorted(Path(root).glob(f"{index:04d}-*"))
        if not found:
            raise RuntimeError(f"no cell folder {index:04d}-* under {root}")
        _cell_dirs[index] = found[0]
    return _cell_dirs[index]


def process_recorder(job_id: int) -> Recorder:
    """This process's recorder for the job's cell (records/<pid>.bin in the cell folder)."""
    index = cell_index(job_id)
    if index not in _recorders:
        _recorders[index] = Recorder(cell_dir_of(job_id) / "records")
    return _recorders[index]


EVENT_OFFSET = struct.calcsize("<q")  # a record's event byte follows its job_id


def count_events(directory: Path, offsets: dict[Path, int], events: frozenset[int]) -> int:
    """Count new records with an event in `events` since the last call.

    `offsets` remembers how far each file was read; a trailing partial
    record (a writer killed mid-write cannot produce one, but a reader may
    race a writer) is left for the next call. The driver calls this while
    the workers run, on the same cores, so it counts the event bytes with a
    strided slice and bytes.count (C loops) instead of unpacking records.
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
        column = data[EVENT_OFFSET:whole:RECORD.size]
        found += sum(column.count(event) for event in events)
        offsets[path] = start + whole
    return found
