"""Counting a cell's jobs from its records while the cell runs."""

from __future__ import annotations

import time
from pathlib import Path

from core.jobcount import COUNTS_DIR, read_counts
from core.recorder import Event, count_events

DONE_EVENTS = frozenset({Event.END, Event.ERROR})
STARTED = frozenset({Event.START})


class JobTally:
    """Ended jobs of one cell, read incrementally from its records folder
    (plus the count files of a bare cell, whose jobs write no records)."""

    def __init__(self, records_dir: Path) -> None:
        self.records_dir = records_dir
        self.counts_dir = records_dir.parent / COUNTS_DIR
        self._recorded = 0
        self._offsets: dict[Path, int] = {}
        self._start_offsets: dict[Path, int] = {}
        self.done = 0
        self._started = 0

    def refresh(self) -> int:
        """Read what was written since the last call; the ended count."""
        self._recorded += count_events(self.records_dir, self._offsets, DONE_EVENTS)
        self.done = self._recorded + read_counts(self.counts_dir)[0]
        return self.done

    def started(self) -> int:
        """Every START so far (read incrementally too)."""
        self._started += count_events(self.records_dir, self._start_offsets, STARTED)
        return self._started

    def wait_for(self, expected: int, deadline_ns: int) -> bool:
        """Poll until `expected` jobs ended; False once the deadline passed."""
        while True:
            if self.refresh() >= expected:
                return True
            if time.monotonic_ns() >= deadline_ns:
                return False
            time.sleep(0.005 if expected - self.done < 4 else 0.02)
