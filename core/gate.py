"""The start gate: jobs of a cell wait until the driver opens the cell's gate.

Preloaded jobs would otherwise be drained by the first worker to boot
while its siblings still start, or start while the producer still
enqueues. A gate-less run (no QB_GATE, e.g. the contract test) is open.
"""

from __future__ import annotations

import os

from core.envnames import GATE_ENV
from core.recorder import GATE_FILE, cell_dir_of, cell_index

_open_gates: set[int] = set()


def gate_is_open(job_id: int) -> bool:
    """True once the cell of `job_id` may start (cached per cell)."""
    index = cell_index(job_id)
    if index in _open_gates or GATE_ENV not in os.environ:
        return True
    if (cell_dir_of(job_id) / GATE_FILE).exists():
        _open_gates.add(index)
        return True
    return False
