"""The sustained phase: a steady-state window in which only the workers run.

The driver and the workers share the machine's cores, so a producer that
keeps topping the queue up during the window takes CPU from the backend it
measures (on 2 cores, celery-redis drained about half as fast with a
top-up producer as from a preload), and a fast backend drains a queue about
as fast as one producer fills it. So the window is fed from a preload sent
while the cell's gate holds the workers idle (core.gate):

1. a first batch goes in before the workers start (the cell's enqueue rate);
2. warm-up: the workers run while the driver keeps a small backlog queued;
3. calibration: when the driver kept the queue fed all through the warm-up's
   second half while sending for a small part of it, that half's completion
   rate is the calibrated rate (the producer neither starved nor slowed the
   workers). Otherwise: gate shut, fill enough for a probe
   at `margin` times the warm-up rate (through Adapter.fill, the adapter's
   fastest path: nothing is measured while the gate holds the workers), then
   gate open, probe: `probe_s` of pure drain, which gives the calibrated rate;
4. gate shut, fill `margin` times that rate over the whole window;
5. gate open; the window opens once the workers are back at speed (`ramp`,
   below), and the driver only watches. Should the backlog still run low (the
   rate rose, or a cap bound the preload), it tops up in short slices, looking
   at the queue between them, and says so (`window_sent`,
   `window_producer_busy_s`; `producer_bound` when it saw the queue empty).
   The CPU time the worker processes use over the window is read from /proc at
   both ends (`window_cpu_s`): the backend's CPU per job, which the machine's idle
   moments and the scheduler's choices move much less than its rate.

The ramp. Workers held at the gate through a fill do not resume at full speed:
in a run at 570c837 (results/reference/2026-12-04-window-start-570c837) the
window's first second held 44-89% of its median second in 6 of 12 windows, with
a fixed 0.2 s settle after the gate opened (docs/methodology.md, "The ramp"). The
window now opens when the completions of the last `ramp_span_s` reach
`ramp_share` of the calibrated rate: not before `settle_s`, and at `max_ramp_s`
whatever the rate (`ramp_reached` false then). Jobs too slow to put RAMP_MIN_JOBS
into a span (8 slots of 1 s jobs) keep the fixed settle.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from core import interrupts
from core.protocol import PhaseReport, SustainedPhase
from core.words import counted
from harness.driver.cell import CellRun

FEED_POLL_S = 0.005  # while the driver feeds the queue
WATCH_POLL_S = 0.1  # while it only watches: reading records costs the workers CPU too
LOW_WATER = 0.25  # top up inside the window below this share of the work still to come
TOP_UP_SLICE_S = 0.02  # a top-up inside the window sends this long, then looks at the queue
RAMP_POLL_S = 0.05
RAMP_MIN_JOBS = 20  # expected in a span, or the span says nothing about the rate
# The warm-up's second half gives the calibrated rate when the queue never fell below
# DRY_SHARE of its backlog target and the driver spent at most MAX_BUSY of it sending: the
# rate was then the workers' own, neither starved nor slowed by the driver's CPU (on 2
# cores, a driver sending all the time held dramatiq-rabbitmq's warm-up far below its
# window's rate). Otherwise a probe measures it with the driver idle.
DRY_SHARE = 0.5
MAX_BUSY = 0.2
MIN_HALF_SHARE = 0.8  # of the second half the rate must really cover
MIN_PRELOAD = 8  # jobs of the measured first batch, whatever the payload


class Backlog:
    """Jobs sent and not yet started in one sustained phase, and the sending."""

    def __init__(self, run: CellRun, report: PhaseReport, cap: int) -> None:
        self.run = run
        self.report = report
        self.cap = cap
        self.batch = run.producer.batch
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


def _fill_paused(run: CellRun, backlog: Backlog, target: int) -> None:
    """Fill to `target` queued jobs while the gate holds the workers idle."""
    run.pause()
    try:
        backlog.fill_held(target)
    finally:
        run.resume()


@dataclass(frozen=True)
class WarmUp:
    """What the warm-up saw: its completion rate, that of its second half (past the
    workers' ramp-up), and whether that half's rate was the workers' own: the driver
    kept jobs queued all through it, sending for at most MAX_BUSY of it."""

    rate: float
    late_rate: float
    workers_own: bool


def _warm_up(run: CellRun, backlog: Backlog, spec: SustainedPhase) -> WarmUp:
    """Run the workers for `warmup_s` while keeping `min_backlog` jobs queued. A send in
    the first half stops at the half, so the second half is measured whole; when it
    still is not (a long send, a warm-up shorter than a poll), the probe decides."""
    warm_end = run.ready_ns + int(spec.warmup_s * 1e9)
    half_ns = run.ready_ns + int(spec.warmup_s * 1e9 / 2)
    half: tuple[int, int, int] | None = None  # (ns, jobs ended, producer busy ns) at half
    low = min(spec.min_backlog, backlog.cap) * DRY_SHARE
    fed, checks = True, 0
    while (now := time.monotonic_ns()) < warm_end:
        interrupts.check()
        if half is None and now >= half_ns:
            half = now, backlog.ended(), backlog.busy_ns
        if half is not None:
            checks += 1
            fed = fed and backlog.queued() >= low
        backlog.fill_to(spec.min_backlog, until_ns=warm_end if half else half_ns)
        time.sleep(FEED_POLL_S)
    rate = _rate(backlog, run.ready_ns, 0)
    end = time.monotonic_ns()
    if half is None or not checks or end - half[0] < MIN_HALF_SHARE * (warm_end - half_ns):
        return WarmUp(rate, rate, False)
    busy = (backlog.busy_ns - half[2]) / (end - half[0])
    return WarmUp(rate, max(_rate(backlog, half[0], half[1]), rate), fed and busy <= MAX_BUSY)


def _probe(run: CellRun, backlog: Backlog, spec: SustainedPhase, warm_rate: float) -> float:
    """Fill for `probe_s` at `margin` times the warm-up rate, then let the workers drain
    it with the driver idle: the calibrated rate."""
    _fill_paused(run, backlog, int(warm_rate * spec.probe_s * spec.margin) + spec.min_backlog)
    run.clock.mark("fill")
    probe_start, ended_at_probe = time.monotonic_ns(), backlog.ended()
    probe_end = probe_start + int(spec.probe_s * 1e9)
    while time.monotonic_ns() < probe_end and backlog.queued() > 0:
        interrupts.check()
        time.sleep(WATCH_POLL_S / 4)
    rate = max(_rate(backlog, probe_start, ended_at_probe), warm_rate)
    run.clock.mark("probe")
    return rate


def watch_window(backlog: Backlog, spec: SustainedPhase, rate: float, window_end: int
                 ) -> int | None:
    """Watch the window until `window_end`, topping the queue up should it fall below
    LOW_WATER of the work still to come; the fewest jobs seen queued.

    The driver looks again before a quarter of what is queued can drain at `rate`, but
    no sooner than FEED_POLL_S nor later than WATCH_POLL_S: a queue the byte cap
    keeps to a few hundred large jobs, topped up every 0.1 s whatever it held, was
    paced at most at cap / 0.1 s (an asyncio 1 MiB cell measured exactly 2,000 jobs/s
    that way, a fifth of its calibrated rate), and one that holds seconds of work
    needs no look more often than every 0.1 s (each look reads the records)."""
    lowest: int | None = None
    while (now := time.monotonic_ns()) < window_end:
        interrupts.check()
        queued = backlog.queued()
        lowest = queued if lowest is None else min(lowest, queued)
        still_to_come = rate * (window_end - now) / 1e9
        if queued < LOW_WATER * still_to_come:
            # in slices: a producer slower than the workers would otherwise send for
            # seconds while the queue it is refilling runs dry unseen
            slice_end = min(window_end, time.monotonic_ns() + int(TOP_UP_SLICE_S * 1e9))
            wanted = min(int(still_to_come * spec.margin) + spec.min_backlog, backlog.cap)
            queued += backlog.fill_to(wanted, until_ns=slice_end)
            if queued < wanted:  # the slice ended first: look, then send on at once
                continue
        lasts_s = queued / rate if rate > 0 else WATCH_POLL_S
        left_s = (window_end - time.monotonic_ns()) / 1e9
        time.sleep(max(0.0, min(max(FEED_POLL_S, lasts_s / 4), WATCH_POLL_S, left_s)))
    return lowest


@dataclass(frozen=True)
class Ramp:
    """When the window opened, how long after the gate, and whether the workers had
    reached the rate by then."""

    start_ns: int
    waited_s: float
    reached: bool


def wait_for_speed(backlog: Backlog, spec: SustainedPhase, rate: float) -> Ramp:
    """Wait, from the gate's opening, until the workers end jobs at `ramp_share` of `rate`
    over the last `ramp_span_s` (module docstring, "The ramp")."""
    opened = time.monotonic_ns()
    earliest = opened + int(spec.settle_s * 1e9)
    if rate * spec.ramp_span_s < RAMP_MIN_JOBS:
        _sleep_until(earliest)
        return Ramp(earliest, spec.settle_s, True)
    latest = opened + int(max(spec.settle_s, spec.max_ramp_s) * 1e9)
    span_ns = int(spec.ramp_span_s * 1e9)
    marks = deque([(opened, backlog.ended())])
    while (now := time.monotonic_ns()) < latest:
        interrupts.check()
        ended = backlog.ended()
        marks.append((now, ended))
        while len(marks) > 2 and now - marks[1][0] >= span_ns:
            marks.popleft()
        since_ns, ended_then = marks[0]
        if (now >= earliest and now - since_ns >= span_ns
                and (ended - ended_then) * 1e9 / (now - since_ns) >= spec.ramp_share * rate):
            return Ramp(now, (now - opened) / 1e9, True)
        time.sleep(min(RAMP_POLL_S, max(0.0, (latest - now) / 1e9)))
    now = time.monotonic_ns()
    return Ramp(now, (now - opened) / 1e9, False)


def _sleep_until(deadline_ns: int) -> None:
    while (left := deadline_ns - time.monotonic_ns()) > 0:
        time.sleep(min(left / 1e9, WATCH_POLL_S))


def run_sustained(run: CellRun, spec: SustainedPhase, report: PhaseReport,
                  sent_before: int) -> int:
    """Warm up, calibrate, fill, then count W seconds with the producer idle."""
    per_job = max(1, run.workload.payload_bytes)
    in_budget = spec.max_backlog_bytes // per_job
    # The fills hold at least min_backlog / 4 jobs even past the byte budget, or a large
    # payload's window would be fed by top-ups; the measured first batch keeps to it.
    cap = max(1, min(spec.max_jobs, max(spec.min_backlog // 4, in_budget)))
    backlog = Backlog(run, report, cap)
    backlog.preload(min(spec.min_backlog, max(MIN_PRELOAD, in_budget)))
    run.clock.mark("preload")
    run.start()

    warm = _warm_up(run, backlog, spec)
    run.clock.mark("warmup")
    if warm.workers_own:
        rate, report.calibrated_by = warm.late_rate, "warm-up"
    else:
        rate, report.calibrated_by = _probe(run, backlog, spec, warm.rate), "probe"
    report.calibrated_per_s = round(rate, 1)
    _fill_paused(run, backlog, int(rate * spec.window_s * spec.margin) + spec.min_backlog)
    report.fill_sent = backlog.sent
    run.clock.mark("fill")

    ramp = wait_for_speed(backlog, spec, rate)
    window_start = ramp.start_ns
    window_end = window_start + int(spec.window_s * 1e9)
    report.ramp_s, report.ramp_reached = round(ramp.waited_s, 3), ramp.reached
    busy_before, sent_before_window = backlog.busy_ns, backlog.sent
    cpu_before = run.adapter.cpu_seconds()
    dead_before = run.adapter.dead_workers()
    run.clock.mark("ramp")
    report.window_min_backlog = watch_window(backlog, spec, rate, window_end)
    if dead := run.adapter.dead_workers() - dead_before:  # their share of the window is missing
        raise RuntimeError(f"{counted(dead, 'worker process', 'worker processes')} exited "
                           f"during the window (their logs say why)")
    cpu_after = run.adapter.cpu_seconds()
    report.window_cpu_s = (None if cpu_before is None or cpu_after is None
                           else round(cpu_after - cpu_before, 6))
    run.clock.mark("window")
    report.window_start_ns, report.window_end_ns = window_start, window_end
    report.window_sent = backlog.sent - sent_before_window
    # a send call that straddles the window's end counts whole: cap at the window
    report.window_producer_busy_s = round(min((backlog.busy_ns - busy_before) / 1e9,
                                              spec.window_s), 3)
    report.producer_busy_s = round(backlog.busy_ns / 1e9, 3)
    report.done_ns = time.monotonic_ns()
    report.timed_out = False  # a window always ends on time; the analysis judges it
    return backlog.sent
