"""A drain whose record mode alternates: the observer effect measured inside one cell.

Drains timed one after the other, instrumented then bare, differ by what the
machine did in between as much as by the records (about +-20% for a
library's 2 s drain on this kind of shared 2-core machine). Here the driver
switches the mode (core.gate's second byte) every `segment_s` while one
preloaded batch drains, in ABBA order (instrumented, bare, bare,
instrumented, ...), so both modes sample the same moments and a linear drift
cancels within each group of four. Each segment keeps its bounds, its mode
and the jobs counted bare in it; the jobs that recorded are counted later
from their END records (scenarios' analysis: harness/observer.py).
"""

from __future__ import annotations

import time

from core.protocol import PhaseReport
from harness.driver.cell import CellRun

ABBA = (False, True, True, False)  # bare? per segment, repeated


def wait_alternating(run: CellRun, report: PhaseReport, expected: int, deadline_ns: int,
                     segment_s: float) -> None:
    """Wait for `expected` ended jobs, switching the record mode every `segment_s`."""
    segments: list[list[int]] = []
    counted = run.tally.bare_count()
    begin = time.monotonic_ns()
    step = 0
    while True:
        bare = ABBA[step % len(ABBA)]
        run.record_bare(bare)
        end = min(begin + int(segment_s * 1e9), deadline_ns)
        drained = run.tally.wait_for(expected, end)
        now, total = time.monotonic_ns(), run.tally.bare_count()
        segments.append([begin, now, int(bare), total - counted])
        begin, counted, step = now, total, step + 1
        if drained or now >= deadline_ns:
            break
    run.record_bare(False)
    report.segments = segments
    report.timed_out = not drained
    report.done_ns = time.monotonic_ns()
