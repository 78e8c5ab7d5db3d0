"""The window's top-ups keep pace with fast workers when the byte cap keeps the queue
small (a large payload): the driver's polling must not set the measured rate.

A fake queue on the real clock: workers take jobs at RATE while any are queued; the
driver may queue at most CAP at a time.
"""

from __future__ import annotations

import time

from core.protocol import SustainedPhase
from harness.driver.sustained import WATCH_POLL_S, watch_window

RATE = 20_000.0  # jobs/s the fake workers could end
CAP = 250  # jobs the byte cap lets the driver queue at once
WINDOW_S = 0.5


class CappedQueue:
    """Jobs sent and taken; the workers take what is queued, at RATE at most."""

    def __init__(self) -> None:
        self.sent = 0
        self.taken = 0
        self.last_ns = time.monotonic_ns()
        self.cap = CAP

    def _advance(self) -> None:
        now = time.monotonic_ns()
        self.taken = min(self.sent, self.taken + int(RATE * (now - self.last_ns) / 1e9))
        self.last_ns = now

    def queued(self) -> int:
        self._advance()
        return self.sent - self.taken

    def fill_to(self, target: int, until_ns: int | None = None) -> int:
        missing = min(target, self.cap) - self.queued()
        self.sent += max(0, missing)
        return max(0, missing)


def test_top_ups_of_a_capped_queue_are_not_paced_by_the_watch_poll() -> None:
    queue = CappedQueue()
    queue.fill_to(CAP)
    spec = SustainedPhase(window_s=WINDOW_S, min_backlog=1000)
    lowest = watch_window(queue, spec, RATE, time.monotonic_ns() + int(WINDOW_S * 1e9))  # type: ignore[arg-type]
    paced_by_watch = CAP / WATCH_POLL_S  # 2,500 jobs/s: what 0.1 s top-ups allowed
    assert queue.taken / WINDOW_S > 2 * paced_by_watch
    assert lowest is not None and lowest >= 0


def test_a_full_queue_is_only_watched() -> None:
    queue = CappedQueue()
    queue.cap = 1_000_000
    queue.fill_to(1_000_000)
    sent = queue.sent
    watch_window(queue, SustainedPhase(window_s=0.3), RATE, time.monotonic_ns() + 300_000_000)  # type: ignore[arg-type]
    assert queue.sent == sent  # 20,000 jobs/s x 0.3 s never brings it below LOW_WATER
