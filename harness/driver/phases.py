"""One function per phase type: send the phase's jobs and wait for them (or not).

Each returns how many jobs it sent and fills its PhaseReport. A new phase
type is a dataclass in core.protocol and one function registered here.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from core.protocol import (
    BatchPhase,
    CrashPhase,
    DepthPhase,
    FillPhase,
    IdlePhase,
    OpenLoopPhase,
    Phase,
    PhaseReport,
    SustainedPhase,
)
from harness.driver.alternate import wait_alternating
from harness.driver.cell import CellRun
from harness.driver.crash import run_crash
from harness.driver.depth import run_depth
from harness.driver.sustained import run_sustained
from harness.memprobe import sample_memory

SATURATED_DRAIN_NS = 1_000_000_000  # how long a saturated open-loop cell still collects


def _wait(run: CellRun, report: PhaseReport, expected: int, deadline_ns: int) -> None:
    report.timed_out = not run.tally.wait_for(expected, deadline_ns)
    report.done_ns = time.monotonic_ns()


def run_batch(run: CellRun, spec: BatchPhase, report: PhaseReport, sent_before: int) -> int:
    """Preloaded (first phase only) or sent to running workers, as fast as it goes."""
    bulk = run.workload.bulk
    if spec.preload and len(run.report.phases) == 1:  # only the first phase preloads
        total = run.producer.send_all(report.first_id, spec.jobs, report, bulk,
                                      spec.enqueue_limit_s)
        run.start()
        cpu_before = run.adapter.cpu_seconds()  # the drain's: the workers' start excluded
    else:
        run.start()
        cpu_before = None
        total = run.producer.send_all(report.first_id, spec.jobs, report, bulk,
                                      spec.enqueue_limit_s)
    assert report.load_start_ns is not None
    deadline = max(run.ready_ns, report.load_start_ns) + int(spec.time_limit_s * 1e9)
    if spec.alternate_s:
        wait_alternating(run, report, sent_before + total, deadline, spec.alternate_s)
    else:
        _wait(run, report, sent_before + total, deadline)
    cpu_after = run.adapter.cpu_seconds() if cpu_before is not None else None
    if cpu_before is not None and cpu_after is not None:
        report.window_cpu_s = round(cpu_after - cpu_before, 6)
    return total


def run_open_loop(run: CellRun, spec: OpenLoopPhase, report: PhaseReport,
                  sent_before: int) -> int:
    """A fixed-rate schedule; a saturated cell stops watching its backlog early."""
    if not spec.without_workers:
        run.start()
    total = run.producer.send_open_loop(report.first_id, spec.rate, spec.duration_s, report,
                                        spec.producers, spec.max_jobs)
    run.clock.mark("schedule")
    deadline = time.monotonic_ns() + int(spec.time_limit_s * 1e9)
    if spec.saturated_backlog is not None and total - run.tally.started() > spec.saturated_backlog:
        # saturated whatever happens next: no need to watch the whole backlog drain
        report.drain_cut_short = True
        deadline = time.monotonic_ns() + SATURATED_DRAIN_NS
    _wait(run, report, sent_before + total, deadline)
    run.clock.mark("drain")
    return total


def run_idle(run: CellRun, spec: IdlePhase, report: PhaseReport, sent_before: int) -> int:
    """Idle latency: each job is sent once the previous one ended, after a gap."""
    run.start()
    if spec.purge_first:
        run.clear_backlog(report)
        run.clock.mark("purge")
    # Wait for the probes' ends: jobs an earlier phase left queued were purged and never
    # end, so counting from sent_before would call every such phase timed out. The tally
    # counts any end, so a job of the window still running after clear_backlog's settle
    # would count as a probe's; the analysis counts the probes themselves from their ids
    # (latency_samples), and nothing reads this phase's timed_out.
    ended_before = run.tally.refresh()
    deadline_ns = time.monotonic_ns() + int(spec.time_limit_s * 1e9)
    report.load_start_ns = time.monotonic_ns()
    sent = 0
    for index in range(spec.jobs):
        time.sleep(spec.gap_ms / 1000)
        run.producer.send(report.first_id + index, 1, bulk=False)
        sent += 1
        run.tally.wait_for(run.tally.done + 1, deadline_ns)
        if time.monotonic_ns() >= deadline_ns:
            break
    report.load_end_ns = time.monotonic_ns()
    _wait(run, report, ended_before + sent, time.monotonic_ns())
    return sent


def run_fill(run: CellRun, spec: FillPhase, report: PhaseReport, sent_before: int) -> int:
    """Memory: jobs sit in the broker with no worker running; memory before and after
    (each the median of `spec.samples` readings, harness/memprobe.py). A control cell
    sends 0 jobs. The jobs go the way a window's backlog does (Producer.fill: the
    adapter's bulk or concurrent path, over up to one producer per CPU): only what
    they leave in the broker is measured, not how fast they got there.

    An in-process queue has no broker: its jobs are real pending tasks of the
    running event loop, held at the shut gate, each with its own payload, and
    the memory is the driver's heap. Its workers stop after the reading.
    """
    in_process = run.adapter.in_process
    if in_process:
        run.start()
        run.pause()
    else:
        run.report.workers_stop_s = run.workers.stop()
    run.clock.mark("workers_stop")
    broker = {"broker_url": run.cell.broker_url, "broker_ctl": run.cell.broker_ctl,
              "queue": run.cell.queue}
    report.memory_before = sample_memory(broker, spec.samples)
    run.clock.mark("memory_sample")
    if spec.jobs:  # nothing is timed here: the fill's fast path (Producer.fill)
        report.load_start_ns = time.monotonic_ns()
        run.producer.fill(report.first_id, spec.jobs, run.producer.batch)
        run.producer.bulk_used = run.adapter.bulk_api  # what Adapter.fill sends with
        report.load_end_ns = time.monotonic_ns()
    run.adapter.wait_enqueued()
    run.clock.mark("enqueue")
    time.sleep(spec.settle_s)
    report.memory_after = sample_memory(broker, spec.samples, final=True)
    run.clock.mark("memory_sample")
    if in_process:
        run.report.workers_stop_s = run.workers.stop()
    report.done_ns = time.monotonic_ns()
    return spec.jobs


def run_crash_phase(run: CellRun, spec: CrashPhase, report: PhaseReport,
                    sent_before: int) -> int:
    """Preloaded jobs, then the fault and the supervised window."""
    run.producer.send_all(report.first_id, spec.jobs, report, run.workload.bulk)
    run.clock.mark("enqueue")
    run.start()
    run_crash(run, spec, report, report.first_id)
    run.report.fault = spec.fault
    return spec.jobs


PhaseRunner = Callable[[CellRun, Phase, PhaseReport, int], int]
RUNNERS: dict[type[Phase], PhaseRunner] = {
    BatchPhase: run_batch,  # type: ignore[dict-item]
    SustainedPhase: run_sustained,  # type: ignore[dict-item]
    OpenLoopPhase: run_open_loop,  # type: ignore[dict-item]
    IdlePhase: run_idle,  # type: ignore[dict-item]
    FillPhase: run_fill,  # type: ignore[dict-item]
    DepthPhase: run_depth,  # type: ignore[dict-item]
    CrashPhase: run_crash_phase,  # type: ignore[dict-item]
}


def run_phases(run: CellRun) -> None:
    """Every phase of the cell in order; job ids continue from phase to phase."""
    run.adapter.purge()
    run.report.settings = run.adapter.settings()
    run.clock.mark_cell("prepare")
    sent = 0
    for spec in run.workload.phases:
        report = PhaseReport(type=spec.type, first_id=run.base + sent)
        run.report.phases.append(report)
        run.clock.phase = spec.type
        report.expected = RUNNERS[type(spec)](run, spec, report, sent)
        run.clock.mark()
        sent += report.expected
    run.clock.phase = ""
    run.report.expected = sent
    run.report.ended = run.tally.done
    run.report.bulk_enqueue = run.producer.bulk_used
