"""An open-loop schedule: when each job is due, and when a producer behind it gives up.

INTENDED is the schedule's time, so a producer slower than the schedule
shows as schedule lag. Without a bound, a cell of a few seconds runs as
long as the producer needs to send every job (pg-raw's single INSERTs, about
650/s, against a 12,700/s schedule: 25 s and more), and its latencies
measure the producer, not the backend. So sending stops at a cut-off,
CUTOFF_FACTOR times the schedule's duration after its start; the jobs not
sent by then are counted (PhaseReport.unsent) and the scenario reports the
rate actually offered. Pure: clock and sleep are parameters, for the tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

CUTOFF_FACTOR = 2.0  # stop sending this many times duration_s after the schedule's start


@dataclass(frozen=True)
class Schedule:
    """`rate` jobs/s from `start_ns` (monotonic) for `duration_s` seconds."""

    start_ns: int
    rate: float
    duration_s: float

    @property
    def cutoff_ns(self) -> int:
        return self.start_ns + int(CUTOFF_FACTOR * self.duration_s * 1e9)

    def intended_ns(self, index: int) -> int:
        return self.start_ns + int(index * 1e9 / self.rate)

    def cutoff_reason(self) -> str:
        return (f"the producer was still behind the schedule {CUTOFF_FACTOR:g} x "
                f"duration_s ({CUTOFF_FACTOR * self.duration_s:g} s) after its start")


def follow(schedule: Schedule, slots: Iterable[int], send: Callable[[int, int], None],
           clock: Callable[[], int] = time.monotonic_ns,
           sleep: Callable[[float], None] = time.sleep) -> int:
    """`send(index, intended_ns)` for each slot at its intended time, until the clock
    passes the schedule's cut-off; returns how many were sent."""
    sent = 0
    for index in slots:
        intended = schedule.intended_ns(index)
        now = clock()
        if now > schedule.cutoff_ns:
            break
        if intended > now:
            sleep((intended - now) / 1e9)
        send(index, intended)
        sent += 1
    return sent
