"""The window's watch: top-ups keep pace with fast workers when the byte cap keeps the
queue small (a large payload), so the driver's polling never sets the measured rate, and
a queue about to run out is looked at before it does.

A fake queue on a fake clock (the driver's sleeps advance it): workers take jobs at RATE
while any are queued; the driver may queue at most `cap` at a time.
"""

from __future__ import annotations

import pytest

from core.protocol import SustainedPhase
from harness.driver import sustained
from harness.driver.sustained import WATCH_POLL_S, watch_window

RATE = 20_000.0  # jobs/s the fake workers could end
CAP = 250  # jobs the byte cap lets the driver queue at once


class FakeClock:
    """monotonic_ns and sleep for the driver's module: sleeping moves the time on."""

    def __init__(self) -> None:
        self.now_ns = 1_000_000_000

    def monotonic_ns(self) -> int:
        return self.now_ns

    def sleep(self, seconds: float) -> None:
        self.now_ns += max(1, int(seconds * 1e9))


class CappedQueue:
    """Jobs sent and taken; the workers take what is queued, at RATE at most."""

    def __init__(self, clock: FakeClock, cap: int = CAP) -> None:
        self.clock = clock
        self.sent = 0
        self.taken = 0
        self.last_ns = clock.now_ns
        self.cap = cap

    def _advance(self) -> None:
        now = self.clock.now_ns
        self.taken = min(self.sent, self.taken + int(RATE * (now - self.last_ns) / 1e9))
        self.last_ns = now

    def queued(self) -> int:
        self._advance()
        return self.sent - self.taken

    def fill_to(self, target: int, until_ns: int | None = None) -> int:
        missing = max(0, min(target, self.cap) - self.queued())
        self.sent += missing
        return missing


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(sustained, "time", fake)
    return fake


def watch(queue: CappedQueue, clock: FakeClock, window_s: float, min_backlog: int = 1000
          ) -> int | None:
    spec = SustainedPhase(window_s=window_s, min_backlog=min_backlog)
    return watch_window(queue, spec, RATE, clock.now_ns + int(window_s * 1e9))  # type: ignore[arg-type]


def test_top_ups_of_a_capped_queue_are_not_paced_by_the_watch_poll(clock: FakeClock) -> None:
    queue = CappedQueue(clock)
    queue.fill_to(CAP)
    lowest = watch(queue, clock, 0.5)
    assert queue.taken / 0.5 > 2 * CAP / WATCH_POLL_S  # 0.1 s top-ups allowed 2,500 jobs/s
    assert lowest is not None and lowest > 0  # looked at before it ran out


def test_a_queue_about_to_run_out_near_the_end_is_seen(clock: FakeClock) -> None:
    """Not feeding (what is queued is over a quarter of the little work left), the driver
    still looks again before the queue can drain, and tops it up."""
    queue = CappedQueue(clock, cap=1_000_000)
    queue.fill_to(400)  # 20 ms of work; the 60 ms window's quarter is 15 ms
    lowest = watch(queue, clock, 0.06, min_backlog=0)
    assert queue.sent > 400 and lowest is not None and lowest > 0


def test_a_full_queue_is_only_watched(clock: FakeClock) -> None:
    queue = CappedQueue(clock, cap=1_000_000)
    queue.fill_to(1_000_000)
    watch(queue, clock, 0.3)
    assert queue.sent == 1_000_000  # 20,000 jobs/s x 0.3 s never brings it below LOW_WATER
