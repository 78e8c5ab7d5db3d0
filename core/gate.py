"""The start gate: jobs of a cell wait while the driver holds the cell's gate shut.

Preloaded jobs would otherwise be drained by the first worker to boot
while its siblings still start, or start while the producer still
enqueues. The driver also shuts the gate again for a moment (`pause`) to
fill the queue for a steady-state window without the workers draining it
as it fills. A gate-less run (no QB_GATE, e.g. the contract test) is open.

The gate is one byte in <cell>/gate.open, memory-mapped by each worker
process once it exists: reading it per job is a load from shared memory,
not a system call. The driver changes it with pwrite, which a shared
mapping of the same file sees at once.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path

from core.envnames import GATE_ENV
from core.recorder import GATE_FILE, cell_dir_of, cell_index

OPEN, SHUT = b"\x01", b"\x00"

_gates: dict[int, mmap.mmap] = {}


def _map(path: Path) -> mmap.mmap | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        if os.fstat(fd).st_size < 1:
            return None  # created, not yet written
        return mmap.mmap(fd, 1, prot=mmap.PROT_READ)
    finally:
        os.close(fd)


def gate_is_open(job_id: int) -> bool:
    """True while the cell of `job_id` may run jobs."""
    if GATE_ENV not in os.environ:
        return True
    index = cell_index(job_id)
    gate = _gates.get(index)
    if gate is None:
        gate = _map(cell_dir_of(job_id) / GATE_FILE)
        if gate is None:
            return False  # the driver has not opened this cell yet
        _gates[index] = gate
    return gate[0] == OPEN[0]


def set_gate(cell_dir: Path, is_open: bool) -> None:
    """Driver side: open (or shut) the cell's gate for every worker."""
    fd = os.open(cell_dir / GATE_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, OPEN if is_open else SHUT, 0)
    finally:
        os.close(fd)
