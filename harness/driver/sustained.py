"""The sustained phase: a steady-state window in which only the workers run.

The driver and the workers share the machine's cores, so a producer that
keeps topping the queue up during the window takes CPU from the backend it
measures (on 2 cores, celery-redis drained about half as fast with a
top-up producer as from a preload), and a fast backend drains a queue about
as fast as one producer fills it. So the window is fed from a preload sent
while the cell's gate holds the workers idle (core.gate):

1. a first batch goes in before the workers start (the cell's enqueue rate);
2. warm-up: the workers run while the driver keeps a small backlog queued;
3. gate shut, fill enough for a probe at `margin` times the warm-up rate
   (through Adapter.fill, the adapter's fastest path: nothing is measured while
   the gate holds the workers);
4. gate open, probe: `probe_s` of pure drain, which gives the calibrated rate;
5. gate shut, fill `margin` times that rate over the whole window;
6. gate open, and after `settle_s` the window: the driver only watches.
   Should the backlog still run low (the rate rose, or the byte cap bound
   the preload), it tops up and says so (`window_sent`,
   `window_producer_busy_s`).
"""

from __future__ import annotations

import time

from core import interrupts
from core.protocol import PhaseReport, SustainedPhase
from harness.driver.cell import CellRun
from harness.driver.producer import BATCH

FEED_POLL_S = 0.005  # while the driver feeds the queue
WATCH_POLL_S = 0.1  # while it only watches: reading records costs the workers CPU too
LOW_WATER = 0.25  # top up inside the window below this share of the work still to come
MIN_PRELOAD = 8  # jobs of the measured first batch, whatever the payload
SEND_BYTES = 4 * 1024 * 1024  # payload per send call, so a timed fill stops on time


class Backlog:
    """Jobs sent and not yet started in one sustained phase, and the sending."""

    def __init__(self, run: CellRun, report: PhaseReport, cap: int, per_job: int) -> None:
        self.run = run
        self.report = report
        self.cap = cap
        self.batch = max(1, min(BATCH, SEND_BYTES // per_job))
        self.sent = 0
        self.busy_ns = 0
        self.started_before = run.tally.started()
        self.done_before = run.tally.refresh()

    def preload(self, jobs: int) -> None:
        self.sent = self.run.producer.send_all(self.report.first_id, min(jobs, self.cap),
                                               self.report, self.run.workload.bulk)
        self.report.preloaded = self.sent

    def ended(self) -> int:
        return self.run.tally.refresh() - self.done_before

    def queued(self) -> int:
        return self.sent - (self.run.tally.started() - self.started_before)

    def fill_to(self, target: int, until_ns: int | None = None) -> int:
        """Send until `target` jobs are queued (at most `cap`), or until `until_ns` has
        passed; how many were sent."""
        missing = min(target, self.cap) - self.queued()
        began = time.monotonic_ns()
        sent = 0
        while sent < missing and (until_ns is None or time.monotonic_ns() < until_ns):
            count = min(self.batch, missing - sent)
            self.run.producer.send(self.report.first_id + self.sent, count,
                                   self.run.producer.bulk_used)
            self.sent += count
            sent += count
        self.busy_ns += time.monotonic_ns() - began
        return sent

    def fill_held(self, target: int) -> None:
        """Fill to `target` queued jobs (at most `cap`) while the gate holds the workers:
        the producer's fastest path (Producer.fill)."""
        missing = min(target, self.cap) - self.queued()
        if missing <= 0:
            return
        began = time.monotonic_ns()
        self.run.producer.fill(self.report.first_id + self.sent, missing, self.batch)
        self.sent += missing
        self.busy_ns += time.monotonic_ns() - began


def _rate(backlog: Backlog, since_ns: int, ended_before: int) -> float:
    seconds = max((time.monotonic_ns() - since_ns) / 1e9, 0.01)
    return (backlog.ended() - ended_before) / seconds


class Steps:
    """Seconds spent in each step of the phase, for `PhaseReport.steps_s`."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.monotonic_ns()

    def mark(self, step: str) -> None:
        now = time.monotonic_ns()
        self.seconds[step] = round(self.seconds.get(step, 0.0) + (now - self._last) / 1e9, 3)
        self._last = now


def _fill_paused(run: CellRun, backlog: Backlog, target: int) -> None:
    """Fill to `target` queued jobs while the gate holds the workers idle."""
    run.pause()
    try:
        backlog.fill_held(target)
    finally:
        run.resume()


def run_sustained(run: CellRun, spec: SustainedPhase, report: PhaseReport,
                  sent_before: int) -> int:
    """Warm up, calibrate, fill, then count W seconds with the producer idle."""
    per_job = max(1, run.workload.payload_bytes)
    in_budget = spec.max_backlog_bytes // per_job
    # The fills hold at least min_backlog / 4 jobs even past the byte budget, or a large
    # payload's window would be fed by top-ups; the measured first batch keeps to it.
    cap = max(1, min(spec.max_jobs, max(spec.min_backlog // 4, in_budget)))
    steps = Steps()
    report.steps_s = steps.seconds
    backlog = Backlog(run, report, cap, per_job)
    backlog.preload(min(spec.min_backlog, max(MIN_PRELOAD, in_budget)))
    steps.mark("preload")
    run.start()
    steps.mark("workers_start")

    warm_end = run.ready_ns + int(spec.warmup_s * 1e9)
    while time.monotonic_ns() < warm_end:
        interrupts.check()
        backlog.fill_to(spec.min_backlog, until_ns=warm_end)
        time.sleep(FEED_POLL_S)
    warm_rate = _rate(backlog, run.ready_ns, 0)
    steps.mark("warmup")
    _fill_paused(run, backlog, int(warm_rate * spec.probe_s * spec.margin) + spec.min_backlog)
    steps.mark("fill")

    probe_start, ended_at_probe = time.monotonic_ns(), backlog.ended()
    probe_end = probe_start + int(spec.probe_s * 1e9)
    while (now := time.monotonic_ns()) < probe_end and backlog.queued() > 0:
        interrupts.check()
        time.sleep(WATCH_POLL_S / 4)
    rate = max(_rate(backlog, probe_start, ended_at_probe), warm_rate)
    report.calibrated_per_s = round(rate, 1)
    steps.mark("probe")
    _fill_paused(run, backlog, int(rate * spec.window_s * spec.margin) + spec.min_backlog)
    report.fill_sent = backlog.sent
    steps.mark("fill")

    window_start = time.monotonic_ns() + int(spec.settle_s * 1e9)
    window_end = window_start + int(spec.window_s * 1e9)
    busy_before, sent_before_window = backlog.busy_ns, backlog.sent
    while time.monotonic_ns() < window_start:
        time.sleep(WATCH_POLL_S / 10)
    steps.mark("gate_settle")
    lowest: int | None = None
    while (now := time.monotonic_ns()) < window_end:
        interrupts.check()
        queued = backlog.queued()
        lowest = queued if lowest is None else min(lowest, queued)
        still_to_come = rate * (window_end - now) / 1e9
        if queued < LOW_WATER * still_to_come:
            backlog.fill_to(int(still_to_come * spec.margin) + spec.min_backlog,
                            until_ns=window_end)
        time.sleep(WATCH_POLL_S)
    steps.mark("window")
    report.window_start_ns, report.window_end_ns = window_start, window_end
    report.window_min_backlog = lowest
    report.window_sent = backlog.sent - sent_before_window
    report.window_producer_busy_s = round((backlog.busy_ns - busy_before) / 1e9, 3)
    report.producer_busy_s = round(backlog.busy_ns / 1e9, 3)
    report.done_ns = time.monotonic_ns()
    report.timed_out = False  # a window always ends on time; the analysis judges it
    return backlog.sent
