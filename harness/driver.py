"""The per-cell driver: runs in the backend's own environment.

    .venvs/<family>/bin/python -m harness.driver --cell CELL_DIR/cell.json

It builds the backend's adapter, starts its real workers, produces the
cell's load (recording INTENDED and SENT per job), waits for the jobs to
end or for the time limit, stops the workers and writes driver.json next
to the records. Stdlib plus the backend library only.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from adapters import load_adapter
from adapters.base import Adapter, AdapterConfig, JobCall
from adapters.job import GATE_ENV
from harness.crash_phase import run_crash
from harness.driver_env import BROKER_URL_ENV
from harness.memprobe import measure_memory
from harness.recorder import Event, Recorder, count_events

DONE_EVENTS = frozenset({Event.END, Event.ERROR})
BATCH = 500


class Interrupted(Exception):
    """SIGTERM or SIGINT reached the driver."""


def _interrupt(signum: int, _frame: Any) -> None:
    raise Interrupted(signal.Signals(signum).name)


class Driver:
    def __init__(self, cell: dict[str, Any], cell_dir: Path) -> None:
        self.cell = cell
        self.cell_dir = cell_dir
        self.records_dir = cell_dir / "records"
        self.workload: dict[str, Any] = cell["workload"]
        self.meta: dict[str, Any] = {"bulk_enqueue": False}
        self.producer = Recorder(self.records_dir)
        self._offsets: dict[Path, int] = {}
        self.done = 0
        self.payload = "x" * int(self.workload.get("payload_bytes", 0))
        # Workers inherit the driver's environment: their jobs wait for this file.
        self.gate = cell_dir / "gate.open"
        os.environ[GATE_ENV] = str(self.gate)
        self.config = config = AdapterConfig(
            backend=cell["backend"], broker_url=cell.get("broker_url"), slots=cell["slots"],
            profile=cell.get("profile", "default"), results=cell.get("results", False),
            queue=cell["queue"], records_dir=self.records_dir, log_dir=cell_dir / "logs",
            options=cell.get("options", {}),
        )
        self.adapter: Adapter = load_adapter(cell["backend"])(config)

    # -- load ---------------------------------------------------------------
    def _send(self, first_id: int, count: int, bulk: bool) -> None:
        spec = self.workload["spec"]
        intended = time.monotonic_ns()
        jobs = [JobCall(first_id + i, intended, spec, self.payload) for i in range(count)]
        rows: list[tuple[int, Event, int]] = []
        if bulk:
            self.adapter.enqueue_batch(jobs)
            sent = time.monotonic_ns()
            for job in jobs:
                rows += [(job.job_id, Event.INTENDED, intended), (job.job_id, Event.SENT, sent)]
        else:
            for job in jobs:
                self.adapter.enqueue(job)
                rows += [(job.job_id, Event.INTENDED, intended),
                         (job.job_id, Event.SENT, time.monotonic_ns())]
                intended = time.monotonic_ns()
        self.producer.record_many(rows)

    def send_all(self, first_id: int, total: int, phase: dict[str, Any]) -> None:
        """Enqueue `total` jobs as fast as the producer can."""
        bulk = bool(self.workload.get("bulk", True)) and self.adapter.bulk_api
        self.meta["bulk_enqueue"] = bulk
        phase["load_start_ns"] = time.monotonic_ns()
        for first in range(0, total, BATCH):
            self._send(first_id + first, min(BATCH, total - first), bulk)
        phase["load_end_ns"] = time.monotonic_ns()

    def send_open_loop(self, first_id: int, rate: float, duration_s: float,
                       phase: dict[str, Any], producers: int = 1,
                       max_jobs: int | None = None) -> int:
        """Send on a fixed schedule; INTENDED is the schedule's time, not the send's.

        With several producers, each is a forked process with its own adapter
        (its own broker connection) taking every n-th slot of one schedule.
        """
        total = max(1, min(int(rate * duration_s), max_jobs or 10**9))
        if self.adapter.in_process:
            producers = 1
        phase["producers"] = producers
        start = time.monotonic_ns() + 20_000_000 * producers
        phase["load_start_ns"] = start
        children = []
        for rank in range(1, producers):
            pid = os.fork()
            if pid == 0:  # a producer child: never returns into the driver
                code = 0
                try:
                    adapter = load_adapter(self.config.backend)(self.config)
                    self._send_on_schedule(adapter, first_id, start, rate,
                                           range(rank, total, producers))
                    adapter.close()
                except BaseException:  # noqa: BLE001 - the parent sees the missing jobs
                    code = 1
                os._exit(code)
            children.append(pid)
        self._send_on_schedule(self.adapter, first_id, start, rate, range(0, total, producers))
        phase["producer_failures"] = sum(os.waitpid(pid, 0)[1] != 0 for pid in children)
        phase["load_end_ns"] = time.monotonic_ns()
        return total

    def _send_on_schedule(self, adapter: Adapter, first_id: int, start: int, rate: float,
                          slots: range) -> None:
        spec = self.workload["spec"]
        interval = 1e9 / rate
        rows: list[tuple[int, Event, int]] = []
        for index in slots:
            job_id = first_id + index
            intended = start + int(index * interval)
            delay = intended - time.monotonic_ns()
            if delay > 0:
                time.sleep(delay / 1e9)
            adapter.enqueue(JobCall(job_id, intended, spec, self.payload))
            rows += [(job_id, Event.INTENDED, intended), (job_id, Event.SENT, time.monotonic_ns())]
            if len(rows) >= 2 * BATCH:
                self.producer.record_many(rows)
                rows = []
        if rows:
            self.producer.record_many(rows)

    def send_one_at_a_time(self, first_id: int, jobs: int, gap_s: float, deadline_ns: int,
                           phase: dict[str, Any]) -> None:
        """Idle latency: each job is sent once the previous one ended, after a gap."""
        phase["load_start_ns"] = time.monotonic_ns()
        for index in range(jobs):
            time.sleep(gap_s)
            self._send(first_id + index, 1, bulk=False)
            self.wait_for(self.done + 1, deadline_ns)
            if time.monotonic_ns() >= deadline_ns:
                break
        phase["load_end_ns"] = time.monotonic_ns()

    def wait_for(self, expected: int, deadline_ns: int) -> bool:
        """Poll the records until `expected` jobs in all ended; False on deadline."""
        while True:
            self.done += count_events(self.records_dir, self._offsets, DONE_EVENTS)
            if self.done >= expected:
                return True
            if time.monotonic_ns() >= deadline_ns:
                return False
            time.sleep(0.005 if expected - self.done < 4 else 0.02)

    # -- the cell -----------------------------------------------------------
    def start(self) -> None:
        if "ready_ns" in self.meta:
            return
        began = time.monotonic()
        self.adapter.start_workers()
        self.meta["workers_start_s"] = round(time.monotonic() - began, 3)
        self.meta["worker_pids"] = self.adapter.worker_pids()
        self.meta["ready_ns"] = time.monotonic_ns()
        self.gate.touch()
        self.adapter.begin()

    def run(self) -> None:
        self.adapter.purge()
        self.meta["settings"] = self.adapter.settings()
        self.meta["phases"] = []
        expected = 0
        for index, spec in enumerate(self.workload["phases"]):
            phase: dict[str, Any] = {"type": spec["type"], "first_id": expected}
            self.meta["phases"].append(phase)
            expected += self.run_phase(index, spec, phase, expected)
            phase["expected"] = expected - phase["first_id"]
        self.meta["expected"] = expected
        self.meta["ended"] = self.done

    def run_phase(self, index: int, spec: dict[str, Any], phase: dict[str, Any],
                  first_id: int) -> int:
        """Run one phase; returns how many jobs it sent."""
        kind = spec["type"]
        limit_ns = int(float(spec.get("time_limit_s", 60)) * 1e9)
        if kind == "batch":
            total = int(spec["jobs"])
            if spec.get("preload", False) and index == 0:
                self.send_all(first_id, total, phase)
                self.start()
            else:
                self.start()
                self.send_all(first_id, total, phase)
            deadline = max(self.meta["ready_ns"], phase["load_start_ns"]) + limit_ns
        elif kind == "open":
            self.start()
            total = self.send_open_loop(first_id, float(spec["rate"]), float(spec["duration_s"]),
                                        phase, int(spec.get("producers", 1)),
                                        spec.get("max_jobs"))
            deadline = time.monotonic_ns() + limit_ns
        elif kind == "idle":
            self.start()
            total = int(spec["jobs"])
            self.send_one_at_a_time(first_id, total, float(spec.get("gap_ms", 50)) / 1000,
                                    time.monotonic_ns() + limit_ns, phase)
            deadline = time.monotonic_ns()
        elif kind == "fill":
            total = int(spec["jobs"])
            phase["memory_before"] = measure_memory(self.cell, self.adapter)
            self.send_all(first_id, total, phase)
            time.sleep(float(spec.get("settle_s", 0.5)))
            phase["memory_after"] = measure_memory(self.cell, self.adapter)
            phase["done_ns"] = time.monotonic_ns()
            return total
        elif kind == "crash":  # crash-recovery: preloaded jobs, a fault, a bounded window
            total = int(spec["jobs"])
            self.send_all(first_id, total, phase)
            self.start()
            run_crash(self, spec, phase, first_id, total)
            self.meta["fault"] = spec["fault"]
            return total
        else:
            raise ValueError(f"unknown phase type {kind!r}")
        phase["timed_out"] = not self.wait_for(first_id + total, deadline)
        phase["done_ns"] = time.monotonic_ns()
        return total

    def finish(self) -> None:
        began = time.monotonic()
        try:
            self.adapter.stop_workers()
            try:
                self.adapter.purge()
            except Exception as exc:  # noqa: BLE001 - only after a broker kill, noted below
                if self.meta.get("fault") != "broker-kill":
                    raise
                self.meta["purge_error"] = f"{type(exc).__name__}: {exc}"[:300]
        finally:
            self.adapter.close()
            self.meta["workers_stop_s"] = round(time.monotonic() - began, 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="harness.driver")
    parser.add_argument("--cell", required=True, type=Path)
    args = parser.parse_args(argv)
    cell = json.loads(args.cell.read_text())
    cell["broker_url"] = os.environ.get(BROKER_URL_ENV) or cell.get("broker_url")
    cell_dir = args.cell.parent
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    result: dict[str, Any] = {"pid": os.getpid()}
    code = 0
    driver: Driver | None = None
    try:
        driver = Driver(cell, cell_dir)
        try:
            driver.run()
        finally:
            driver.finish()
            result.update(driver.meta)
    except Interrupted as exc:
        result["error"] = f"interrupted by {exc}"
        code = 130
    except Exception as exc:  # noqa: BLE001 - reported to the coordinator, cell marked failed
        result["error"] = f"{type(exc).__name__}: {exc}".strip()
        result["traceback"] = traceback.format_exc()
        code = 1
    tmp = cell_dir / "driver.json.tmp"
    tmp.write_text(json.dumps(result, indent=1, default=str))
    tmp.replace(cell_dir / "driver.json")
    return code


if __name__ == "__main__":
    sys.exit(main())
