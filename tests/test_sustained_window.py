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


class SlowProducerQueue(CappedQueue):
    """A producer that sends at `producer_rate`, slower than the workers take: each
    send moves the fake clock on by the time it took."""

    def __init__(self, clock: FakeClock, producer_rate: float) -> None:
        super().__init__(clock, cap=10_000_000)
        self.producer_rate = producer_rate

    def fill_to(self, target: int, until_ns: int | None = None) -> int:
        sent = 0
        while self.queued() < target and (until_ns is None or self.clock.now_ns < until_ns):
            self.sent += 100
            sent += 100
            self.clock.now_ns += int(100 / self.producer_rate * 1e9)
        return sent


def test_a_queue_that_runs_dry_while_it_is_topped_up_is_seen(clock: FakeClock) -> None:
    """The driver tops up in slices and looks at the queue between them, so a producer
    slower than the workers cannot hide a dry queue (producer_bound) behind one long send."""
    queue = SlowProducerQueue(clock, producer_rate=RATE / 4)
    queue.sent = 2_000  # 0.1 s of work in a 1 s window
    lowest = watch(queue, clock, 1.0)
    assert lowest == 0


class RampingWorkers:
    """Workers that end jobs at a rate rising linearly from 0 to RATE over `ramp_s`
    after the gate opened (the fake clock's start), or holding at `top` x RATE."""

    def __init__(self, clock: FakeClock, ramp_s: float, top: float = 1.0) -> None:
        self.clock = clock
        self.opened_ns = clock.now_ns
        self.ramp_s = ramp_s
        self.top = top

    def rate_at(self, t_s: float) -> float:
        return self.top * RATE * (min(1.0, t_s / self.ramp_s) if self.ramp_s else 1.0)

    def ended(self) -> int:
        t_s = (self.clock.now_ns - self.opened_ns) / 1e9
        if not self.ramp_s or t_s >= self.ramp_s:
            full = self.top * RATE * (self.ramp_s / 2 + max(0.0, t_s - self.ramp_s))
        else:
            full = self.top * RATE * t_s * t_s / self.ramp_s / 2
        return int(full)


def opens_after(workers: RampingWorkers, clock: FakeClock, rate: float = RATE
                ) -> tuple[float, bool]:
    ramp = sustained.wait_for_speed(workers, SustainedPhase(), rate)  # type: ignore[arg-type]
    waited_s = (ramp.start_ns - workers.opened_ns) / 1e9
    assert ramp.waited_s == pytest.approx(waited_s, abs=1e-6)  # what the cell reports
    return waited_s, ramp.reached


def test_the_window_opens_once_the_workers_are_back_at_speed(clock: FakeClock) -> None:
    spec = SustainedPhase()
    waited_s, reached = opens_after(RampingWorkers(clock, ramp_s=0.6), clock)
    # the last 0.3 s reached 0.8 x RATE: from the ramp's 0.65 s on
    assert reached and 0.6 <= waited_s <= 0.6 + spec.ramp_span_s
    assert waited_s < spec.max_ramp_s


def test_workers_at_speed_at_once_wait_the_settle_only(clock: FakeClock) -> None:
    spec = SustainedPhase()
    waited_s, reached = opens_after(RampingWorkers(clock, ramp_s=0.0), clock)
    assert reached and spec.settle_s <= waited_s <= spec.ramp_span_s + 0.06


def test_workers_that_never_reach_the_rate_open_the_window_at_the_limit(clock: FakeClock
                                                                         ) -> None:
    waited_s, reached = opens_after(RampingWorkers(clock, ramp_s=0.0, top=0.5), clock)
    assert not reached and waited_s == pytest.approx(SustainedPhase().max_ramp_s, abs=0.06)


def test_jobs_too_slow_to_judge_a_span_by_keep_the_fixed_settle(clock: FakeClock) -> None:
    waited_s, reached = opens_after(RampingWorkers(clock, ramp_s=0.0, top=0.0), clock, rate=8.0)
    assert reached and waited_s == pytest.approx(SustainedPhase().settle_s, abs=0.01)
