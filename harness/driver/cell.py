"""One cell of a group: workers up, gate open, phases in order, settled for the next."""

from __future__ import annotations

import time
from pathlib import Path

from core.gate import set_bare, set_gate
from core.protocol import CellSpec, DriverReport, PhaseReport, Workload
from core.recorder import ID_SPAN, PRODUCER_RECORDS, Recorder
from harness.driver.producer import Producer
from harness.driver.steps import StepClock
from harness.driver.tally import JobTally
from harness.driver.workers import CLOSE_GRACE_S, WorkerSet

QUIESCE_S = 10.0  # longest wait for the previous cell's running jobs to finish
QUIET_S = 0.1  # after a purge, no job ended for this long: the held jobs are done


class CellRun:
    """The state of one running cell, shared by the phase functions."""

    def __init__(self, cell: CellSpec, cell_dir: Path, workers: WorkerSet) -> None:
        if cell.workload is None:
            raise ValueError(f"cell {cell.index} has no workload")
        self.cell = cell
        self.workload: Workload = cell.workload
        self.cell_dir = cell_dir
        self.records_dir = cell_dir / "records"
        self.records_dir.mkdir(parents=True, exist_ok=True)
        self.workers = workers
        self.adapter = workers.adapter
        self.report = DriverReport(worker_log_dir=str(workers.config.log_dir))
        self.tally = JobTally(self.records_dir)
        self.producer = Producer(self.adapter, workers.config,
                                 Recorder(self.records_dir / PRODUCER_RECORDS),
                                 self.workload.spec, self.workload.payload_bytes)
        self.base = cell.index * ID_SPAN  # job ids of this cell: base + n
        self.clock = StepClock()
        self.report.steps_s = self.clock.seconds

    def start(self) -> None:
        """Workers up (started now or kept from the previous cell), then open the gate."""
        if self.report.ready_ns is not None:
            return
        self.clock.mark()
        started_in = self.workers.ensure_running()
        if started_in is not None:
            self.report.workers_start_s = started_in
        self.report.workers_reused = started_in is None
        self.report.worker_pids = self.adapter.worker_pids()
        self.report.ready_ns = time.monotonic_ns()
        set_bare(self.cell_dir, bool(self.cell.options.get("bare")))  # the self-test's baseline
        set_gate(self.cell_dir, True)
        self.adapter.begin()
        if started_in is None:  # kept from the previous cell: the phase's own moment
            self.clock.mark()
        else:
            self.clock.mark_cell("workers_start")

    def pause(self) -> None:
        """Hold every job that has not started yet at the gate (the workers idle)."""
        set_gate(self.cell_dir, False)

    def resume(self) -> None:
        set_gate(self.cell_dir, True)

    def record_bare(self, bare: bool) -> None:
        """Jobs that pass the gate from now on count themselves only (True) or record."""
        set_bare(self.cell_dir, bare)

    @property
    def ready_ns(self) -> int:
        if self.report.ready_ns is None:
            raise RuntimeError("the workers were not started in this cell")
        return self.report.ready_ns

    def clear_backlog(self, report: PhaseReport) -> None:
        """Purge what an earlier, time-boxed phase left queued and let the jobs workers
        already hold end, so the next phase measures an idle system."""
        self.adapter.purge()
        deadline = time.monotonic() + QUIESCE_S
        ended, quiet_since = self.tally.refresh(), time.monotonic()
        while time.monotonic() - quiet_since < QUIET_S and time.monotonic() < deadline:
            time.sleep(QUIET_S / 4)
            if self.tally.refresh() != ended:
                ended, quiet_since = self.tally.done, time.monotonic()
        report.backlog_purged = True

    def settle(self) -> None:
        """Leave the queue empty and no job of this cell running, for the next cell.

        Purge what is queued; jobs a worker already holds (prefetched or
        running) finish into this cell's records. If they do not within
        QUIESCE_S, the workers are stopped so the next cell starts fresh ones.
        """
        began = time.monotonic()
        if self.report.fault:  # a fault may leave workers half-dead: never reuse them
            self.report.workers_stop_s = self.workers.stop(CLOSE_GRACE_S)
        if self.workers.running:
            try:
                self.adapter.purge()
            except Exception as exc:  # noqa: BLE001 - e.g. the broker was killed on purpose
                self.report.purge_error = f"{type(exc).__name__}: {exc}"[:300]
            deadline = time.monotonic() + QUIESCE_S
            while time.monotonic() < deadline:
                if self.tally.refresh() >= self.tally.started():
                    break
                time.sleep(0.02)
            else:
                self.report.workers_stop_s = self.workers.stop()
        self.report.settle_s = round(time.monotonic() - began, 3)
        self.clock.mark_cell("settle")
