"""Bare mode's only trace: a per-process count of finished jobs.

A bare job (its cell's gate says bare, core/gate.py) leaves no per-job records: each
worker process keeps `count, t_ns of the latest` (16 bytes) in a file
memory-mapped from <cell>/counts/<file_pid()>.cnt, so counting a job is a
store into shared memory, never a system call, and the driver reads the
totals with plain reads at any moment (a file mapping is coherent with
read() on Linux). Forked children of a process that shares its files (RQ's
work horses, one at a time) map the same file and continue its count.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
import time
from pathlib import Path

from core.folder_files import FolderFiles
from core.recorder import cell_dir_of, cell_index, current_pid, file_pid

COUNT = struct.Struct("<qq")  # finished jobs, t_ns (monotonic) of the latest
COUNTS_DIR = "counts"


class JobCounter:
    """This process's count file for one cell, mapped lazily (again after a fork)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()  # thread pools: the read-add-store is not atomic
        self._map: mmap.mmap | None = None
        self._pid = -1

    def _mapping(self) -> mmap.mmap:
        if self._map is None or self._pid != current_pid():
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.directory / f"{file_pid()}.cnt", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if os.fstat(fd).st_size < COUNT.size:
                    os.ftruncate(fd, COUNT.size)
                self._map = mmap.mmap(fd, COUNT.size)
            finally:
                os.close(fd)
            self._pid = current_pid()
        return self._map

    def add(self, jobs: int = 1) -> None:
        """`jobs` more finished jobs, now."""
        with self._lock:
            mapping = self._mapping()
            count, _ = COUNT.unpack_from(mapping)
            COUNT.pack_into(mapping, 0, count + jobs, time.monotonic_ns())


_counters: dict[int, JobCounter] = {}


def process_counter(job_id: int) -> JobCounter:
    """This process's counter for the job's cell."""
    index = cell_index(job_id)
    if index not in _counters:
        _counters[index] = JobCounter(cell_dir_of(job_id) / COUNTS_DIR)
    return _counters[index]


class CountFiles:
    """The count files of one cell's folder, each held open (core/folder_files.py), for
    the driver that reads them every poll."""

    def __init__(self, directory: Path) -> None:
        self.files = FolderFiles(directory, ".cnt")

    def read(self) -> tuple[int, int | None]:
        """(finished jobs, t_ns of the latest) over every count file now."""
        total, latest = 0, None
        for descriptor in self.files.open_files().values():
            data = os.pread(descriptor, COUNT.size, 0)
            if len(data) < COUNT.size:
                continue  # created, not yet sized
            count, t_ns = COUNT.unpack(data)
            total += count
            if count:
                latest = t_ns if latest is None else max(latest, t_ns)
        return total, latest


def read_counts(directory: Path) -> tuple[int, int | None]:
    """CountFiles(directory).read(), once."""
    return CountFiles(directory).read()
