"""The start gate: jobs of a cell wait while the driver holds the cell's gate shut.

Preloaded jobs would otherwise be drained by the first worker to boot
while its siblings still start, or start while the producer still
enqueues. The driver also shuts the gate again for a moment (`pause`) to
fill the queue for a steady-state window without the workers draining it
as it fills. A gate-less run (no QB_GATE, e.g. the contract test) is open.

The gate's second byte is the record mode: while it is set, jobs leave no
records and only count themselves (core.jobcount), the self-test's bare
baseline. A job reads both bytes in the one look-up it makes at the gate,
so the driver can switch the mode while a batch drains (the observer
effect's alternating segments, harness/observer.py) at no cost per job.

The gate is two bytes in <cell>/gate.open, memory-mapped by each worker
process once it exists: reading it per job is a load from shared memory,
not a system call. The driver changes them with pwrite, which a shared
mapping of the same file sees at once.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path

from core.envnames import GATE_ENV
from core.recorder import GATE_FILE, cell_dir_of, cell_index

ON, OFF = b"\x01", b"\x00"
OPEN_AT, BARE_AT = 0, 1  # byte offsets: the gate, the record mode
SIZE = 2

_gates: dict[int, mmap.mmap] = {}


def _map(path: Path) -> mmap.mmap | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        if os.fstat(fd).st_size < SIZE:
            return None  # created, not yet sized
        return mmap.mmap(fd, SIZE, prot=mmap.PROT_READ)
    finally:
        os.close(fd)


def pass_gate(job_id: int) -> bool | None:
    """None while the cell of `job_id` holds its jobs; once it lets them run, whether
    this job runs bare (records nothing, counts itself)."""
    if GATE_ENV not in os.environ:
        return False
    index = cell_index(job_id)
    gate = _gates.get(index)
    if gate is None:
        gate = _map(cell_dir_of(job_id) / GATE_FILE)
        if gate is None:
            return None  # the driver has not opened this cell yet
        _gates[index] = gate
    if gate[OPEN_AT] != ON[0]:
        return None
    return gate[BARE_AT] == ON[0]


def _write(cell_dir: Path, offset: int, on: bool) -> None:
    fd = os.open(cell_dir / GATE_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if os.fstat(fd).st_size < SIZE:
            os.ftruncate(fd, SIZE)  # zeros: shut, recording
        os.pwrite(fd, ON if on else OFF, offset)
    finally:
        os.close(fd)


def set_gate(cell_dir: Path, is_open: bool) -> None:
    """Driver side: open (or shut) the cell's gate for every worker."""
    _write(cell_dir, OPEN_AT, is_open)


def set_bare(cell_dir: Path, bare: bool) -> None:
    """Driver side: jobs that pass the gate from now on record nothing (True) or
    record as in a run (False)."""
    _write(cell_dir, BARE_AT, bare)
