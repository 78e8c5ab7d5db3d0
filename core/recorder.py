"""Append-only binary event records, one file per writing process.

Stdlib only: this module runs inside every backend's environment (workers,
drivers). Each record is a fixed 24-byte struct written with a single
os.write on an O_APPEND descriptor, so a record is either fully on disk or
absent, even when the writer is SIGKILLed right after the call returns.

One record kind stands for many jobs: a NOOP_RUN record says that the jobs
job_id .. job_id + n - 1 each started and ended at its t_ns, where n is the
record's second byte (the `attempt` field of other records, 1..MAX_RUN). The
raw ceilings run a fetched batch of noop jobs at one instant, and one record
per contiguous run of ids instead of two per job keeps what the harness
writes and reads small next to the jobs it times (the observer effect).
Every reader expands it: `count_events` here, `expand_run` for per-record
readers, scenarios/records.py for the analysis.
"""

from __future__ import annotations

import enum
import os
import struct
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from core.envnames import RECORDS_DIR_ENV
from core.folder_files import FolderFiles

RECORD = struct.Struct("<qBBxxiq")  # job_id, event, attempt, pad, pid, t_ns

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
    NOOP_RUN = 6  # a run of noop jobs that started and ended at once (module docstring)


START, END = int(Event.START), int(Event.END)  # plain ints: packed per job
NOOP_RUN = int(Event.NOOP_RUN)
MAX_RUN = 255  # jobs per NOOP_RUN record: its length is one byte


def contiguous_runs(job_ids: Sequence[int]) -> list[tuple[int, int]]:
    """(first id, length) of each run of consecutive ids, in order, at most MAX_RUN long."""
    count = len(job_ids)
    if 0 < count <= MAX_RUN and job_ids[-1] - job_ids[0] == count - 1 and (
            list(job_ids) == list(range(job_ids[0], job_ids[0] + count))):
        return [(job_ids[0], count)]  # a fetched batch in enqueue order: one run, checked in C
    runs: list[tuple[int, int]] = []
    first = previous = None
    for job_id in job_ids:
        if previous is not None and job_id == previous + 1 and job_id - first < MAX_RUN:
            previous = job_id
            continue
        if first is not None:
            runs.append((first, previous - first + 1))
        first = previous = job_id
    if first is not None:
        runs.append((first, previous - first + 1))
    return runs


def expand_run(job_id: int, event: int, length: int) -> list[tuple[int, int]]:
    """(job id, event) pairs one record stands for: itself, or a NOOP_RUN's STARTs and
    ENDs (per job, START first)."""
    if event != NOOP_RUN:
        return [(job_id, event)]
    return [(job, kind) for job in range(job_id, job_id + length) for kind in (START, END)]


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
        """START and END of each of these noop jobs, all stamped now, in one write: one
        NOOP_RUN record per run of consecutive ids (a raw ceiling's fetched batch is
        usually one run), where two records per job cost a ceiling consumer 48 bytes of
        write and of the driver's reading per job."""
        pid, t_ns, pack = self._pid, time.monotonic_ns(), RECORD.pack
        os.write(self._descriptor(), b"".join(
            [pack(first, NOOP_RUN, length, pid, t_ns)
             for first, length in contiguous_runs(job_ids)]))

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
# The producer's INTENDED and SENT records go to this subfolder of a cell's records: what
# the driver reads while the cell runs (count_events, the crash tracker) is the workers'
# files at the top only, so the records of a fill (48 bytes a job, 290 MB for redis-raw's
# 6 million) are not read back at the window's start. The analysis reads both.
PRODUCER_RECORDS = "sent"
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


def _run_jobs(data: bytes, column: bytes) -> int:
    """Jobs in the NOOP_RUN records of `data` (whole records; `column` its event bytes)."""
    jobs, index = 0, column.find(NOOP_RUN)
    while index >= 0:
        jobs += data[index * RECORD.size + EVENT_OFFSET + 1]
        index = column.find(NOOP_RUN, index + 1)
    return jobs


class RecordTail:
    """The records appended to a records folder's files since the last read, file by
    file, each file held open (core/folder_files.py). A trailing partial record (a
    writer killed mid-write cannot produce one, but a reader may race a writer) is left
    for the next read."""

    def __init__(self, directory: Path) -> None:
        self.files = FolderFiles(directory, ".bin")
        self.offsets: dict[str, int] = {}

    def read(self) -> list[bytes]:
        """The new whole records of each file that has any."""
        chunks = []
        for name, descriptor in self.files.open_files().items():
            start = self.offsets.get(name, 0)
            new = os.fstat(descriptor).st_size - start
            if new < RECORD.size:
                continue
            data = os.pread(descriptor, new - new % RECORD.size, start)
            whole = len(data) - len(data) % RECORD.size
            self.offsets[name] = start + whole
            chunks.append(data[:whole])
        return chunks


def count_events(chunks: Iterable[bytes], events: frozenset[int]) -> int:
    """Records with an event in `events` among these whole records (a NOOP_RUN record
    counts as the STARTs and ENDs of its jobs). The driver calls this while the workers
    run, on the same cores, so it counts the event bytes with a strided slice and
    bytes.count (C loops) instead of unpacking records."""
    found = 0
    for data in chunks:
        column = data[EVENT_OFFSET::RECORD.size]
        found += sum(column.count(event) for event in events)
        found += _run_jobs(data, column) * len(events & {START, END})
    return found
