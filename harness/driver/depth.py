"""The depth phase: a deep backlog queued with no worker running, then drained.

1. the workers stop; the broker's memory is read; `jobs` are sent in
   `memory_checks` chunks, the memory read before each: the fill stops
   before a chunk would take the broker past `max_broker_bytes` at the
   bytes per job so far, or once `enqueue_limit_s` passed (`unsent` and
   `unsent_reason` say which cap stopped it);
2. the memory is read again `settle_s` later;
3. the workers start (gate open) and one probe job is sent behind the backlog,
   then, where the adapter serves a second queue (the cell's `second_queue`
   option), a second probe on that queue (`second_queue` says how it is served,
   "" for none);
4. the drain is counted over [ready + warmup_s, + window_s], cut short when
   every job has ended;
5. the probe is waited for while the jobs ahead of it can drain by
   ready + time_limit_s at the counted rate; otherwise `drain_cut_short`
   (the analysis then states the wait to expect instead of a measurement).
"""

from __future__ import annotations

import math
import time
from typing import Any

from core import interrupts
from core.protocol import DepthPhase, PhaseReport
from harness.driver.cell import CellRun
from harness.memprobe import measure_memory

WATCH_POLL_S = 0.05


def _over_budget(spec: DepthPhase, broker: dict[str, Any], before: int | None, queued: int,
                 chunk: int) -> str | None:
    """Why the next `chunk` jobs would break the memory budget, or None."""
    if before is None or queued == 0:
        return None
    now = measure_memory(broker).get("bytes")
    if now is None:
        return None
    per_job = max(0, now - before) / queued
    if now - before + per_job * chunk <= spec.max_broker_bytes:
        return None
    return (f"memory budget: {spec.max_broker_bytes / 2**20:,.0f} MiB of broker memory, "
            f"{per_job:,.0f} B per job so far")


def _fill(run: CellRun, spec: DepthPhase, report: PhaseReport, broker: dict[str, Any]) -> int:
    """Send up to `spec.jobs` jobs within both caps; how many were sent."""
    before = (report.memory_before or {}).get("bytes")
    step = max(1, math.ceil(spec.jobs / max(1, spec.memory_checks)))
    began = time.monotonic()
    queued = 0
    scratch = PhaseReport(type=spec.type, first_id=report.first_id)
    while queued < spec.jobs and report.unsent_reason is None:
        interrupts.check()
        chunk = min(step, spec.jobs - queued)
        report.unsent_reason = _over_budget(spec, broker, before, queued, chunk)
        if report.unsent_reason:
            break
        left_s = spec.enqueue_limit_s - (time.monotonic() - began)
        sent = run.producer.send_all(report.first_id + queued, chunk, scratch,
                                     run.workload.bulk, max(left_s, 1e-3)) if left_s > 0 else 0
        queued += sent
        if sent < chunk:
            report.unsent_reason = f"enqueue time limit: {spec.enqueue_limit_s:g} s"
    report.unsent = spec.jobs - queued
    return queued


def _count_window(run: CellRun, spec: DepthPhase, report: PhaseReport, total: int) -> float:
    """Watch the drain's window; the rate counted in it (jobs/s)."""
    start = run.ready_ns + int(spec.warmup_s * 1e9)
    end = start + int(spec.window_s * 1e9)
    done_at_start: int | None = None
    while (now := time.monotonic_ns()) < end:
        interrupts.check()
        done = run.tally.refresh()
        if done_at_start is None and now >= start:
            done_at_start = done
        if done >= total:  # the backlog ran out: the window ends here
            end = now
            break
        time.sleep(WATCH_POLL_S)
    if done_at_start is None:  # drained within the warm-up: count the whole drain
        start, done_at_start = run.ready_ns, 0
    report.window_start_ns, report.window_end_ns = start, end
    report.window_min_backlog = total - run.tally.started()
    return (run.tally.refresh() - done_at_start) / max((end - start) / 1e9, 1e-3)


def run_depth(run: CellRun, spec: DepthPhase, report: PhaseReport, sent_before: int) -> int:
    """Fill with the workers stopped, then drain, probe and (within the cap) wait."""
    run.report.workers_stop_s = run.workers.stop()
    run.clock.mark("workers_stop")
    broker = {"broker_url": run.cell.broker_url, "broker_ctl": run.cell.broker_ctl}
    report.memory_before = measure_memory(broker)
    run.clock.mark("memory_sample")
    report.load_start_ns = time.monotonic_ns()
    queued = _fill(run, spec, report, broker)
    report.load_end_ns = time.monotonic_ns()
    report.preloaded = queued
    run.adapter.wait_enqueued()
    run.clock.mark("enqueue")
    time.sleep(spec.settle_s)
    report.memory_after = measure_memory(broker, final=True)
    run.clock.mark("memory_sample")

    run.start()
    run.producer.send(report.first_id + queued, 1, bulk=False)  # the probe, behind them all
    probes = 1
    report.second_queue = run.adapter.second_queue if run.adapter.serves_second_queue else ""
    if report.second_queue:
        run.producer.send(report.first_id + queued + 1, 1, bulk=False, second_queue=True)
        probes = 2
    total = sent_before + queued + probes
    rate = _count_window(run, spec, report, total)
    deadline = run.ready_ns + int(spec.time_limit_s * 1e9)
    remaining = total - run.tally.refresh()
    if remaining > 0:
        due = time.monotonic_ns() + remaining / max(rate, 1e-9) * 1e9
        reached = due <= deadline and run.tally.wait_for(total, deadline)
        report.drain_cut_short = not reached
    report.done_ns = time.monotonic_ns()
    return queued + probes
