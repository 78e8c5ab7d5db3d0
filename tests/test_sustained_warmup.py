"""When a sustained cell may take its calibrated rate from the warm-up (no probe).

The warm-up's second half gives the rate only when it was the workers' own: the
driver kept the queue fed, sent for a small part of the half, and the half was
measured whole. A fake queue drains at a known rate on the real clock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from core.protocol import SustainedPhase
from harness.driver.sustained import _warm_up

RATE = 2000.0  # jobs/s the fake workers end
SPEC = SustainedPhase(warmup_s=0.2, min_backlog=1000)


@dataclass
class FakeRun:
    ready_ns: int


class FakeBacklog:
    """A queue the workers drain at RATE; each top-up costs `send_s` of driver time (or,
    with `stuck_until_ns`, one send blocks until then); `dry` empties it in the second
    half."""

    def __init__(self, ready_ns: int, send_s: float = 0.0, dry: bool = False,
                 stuck_until_ns: int | None = None) -> None:
        self.ready_ns = ready_ns
        self.send_s = send_s
        self.dry = dry
        self.stuck_until_ns = stuck_until_ns
        self.cap = 10_000
        self.busy_ns = 0

    def _elapsed_s(self) -> float:
        return (time.monotonic_ns() - self.ready_ns) / 1e9

    def ended(self) -> int:
        return int(RATE * self._elapsed_s())

    def queued(self) -> int:
        return 0 if self.dry and self._elapsed_s() > SPEC.warmup_s / 2 else 1000

    def fill_to(self, target: int, until_ns: int | None = None) -> int:
        began = time.monotonic_ns()
        if self.stuck_until_ns is not None:
            while time.monotonic_ns() < self.stuck_until_ns:
                time.sleep(0.001)
            self.stuck_until_ns = None
        elif self.send_s:
            time.sleep(self.send_s)
        self.busy_ns += time.monotonic_ns() - began
        return 0


def warm_up(**fake: object) -> tuple[bool, float]:
    ready = time.monotonic_ns()
    result = _warm_up(FakeRun(ready), FakeBacklog(ready, **fake), SPEC)  # type: ignore[arg-type]
    return result.workers_own, result.late_rate


def test_a_fed_queue_and_an_idle_driver_give_the_workers_own_rate() -> None:
    own, rate = warm_up()
    assert own and rate == pytest.approx(RATE, rel=0.2)


def test_a_queue_that_ran_dry_needs_the_probe() -> None:
    assert not warm_up(dry=True)[0]


def test_a_driver_busy_sending_needs_the_probe() -> None:
    assert not warm_up(send_s=0.01)[0]  # 10 ms of sending per 5 ms poll


def test_a_send_that_runs_over_the_half_needs_the_probe() -> None:
    """A send from the first half that ends late in the second leaves a few ms to
    measure, which must not pass for the half."""
    stuck = time.monotonic_ns() + int(SPEC.warmup_s * 0.95e9)
    assert not warm_up(stuck_until_ns=stuck)[0]
