"""Counting a cell's jobs from its records while the cell runs."""

from __future__ import annotations

import time
from pathlib import Path

from core.jobcount import COUNTS_DIR, CountFiles
from core.recorder import Event, RecordTail, count_events

DONE_EVENTS = frozenset({Event.END, Event.ERROR})
STARTED = frozenset({Event.START})


class JobTally:
    """Ended and started jobs of one cell, read incrementally from its records folder
    (plus the count files of a bare cell, whose jobs write no records)."""

    def __init__(self, records_dir: Path) -> None:
        self.records_dir = records_dir
        self.records = RecordTail(records_dir)
        self.counts = CountFiles(records_dir.parent / COUNTS_DIR)
        self._recorded = 0
        self._started = 0
        self.done = 0

    def refresh(self) -> int:
        """Read what was written since the last call; the ended count."""
        chunks = self.records.read()
        self._recorded += count_events(chunks, DONE_EVENTS)
        self._started += count_events(chunks, STARTED)
        self.done = self._recorded + self.bare_count()
        return self.done

    def bare_count(self) -> int:
        """The jobs that ran bare (core/jobcount.py), counted now."""
        return self.counts.read()[0]

    def started(self) -> int:
        """Every START so far (a bare job counts only as ended)."""
        self.refresh()
        return self._started

    def wait_for(self, expected: int, deadline_ns: int) -> bool:
        """Poll until `expected` jobs ended; False once the deadline passed."""
        while True:
            if self.refresh() >= expected:
                return True
            if time.monotonic_ns() >= deadline_ns:
                return False
            time.sleep(0.005 if expected - self.done < 4 else 0.02)
