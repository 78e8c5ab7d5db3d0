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
        config = AdapterConfig(
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

    def send_all(self, total: int) -> None:
        """Enqueue `total` jobs as fast as the producer can."""
        bulk = bool(self.workload.get("bulk", True)) and self.adapter.bulk_api
        self.meta["bulk_enqueue"] = bulk
        self.meta["load_start_ns"] = time.monotonic_ns()
        for first in range(0, total, BATCH):
            self._send(first, min(BATCH, total - first), bulk)
        self.meta["load_end_ns"] = time.monotonic_ns()

    def send_open_loop(self, rate: float, duration_s: float) -> int:
        """Send on a fixed schedule; INTENDED is the schedule's time, not the send's."""
        spec = self.workload["spec"]
        total = max(1, int(rate * duration_s))
        interval = 1e9 / rate
        start = time.monotonic_ns() + 10_000_000
        self.meta["load_start_ns"] = start
        rows: list[tuple[int, Event, int]] = []
        for job_id in range(total):
            intended = start + int(job_id * interval)
            delay = intended - time.monotonic_ns()
            if delay > 0:
                time.sleep(delay / 1e9)
            self.adapter.enqueue(JobCall(job_id, intended, spec, self.payload))
            rows += [(job_id, Event.INTENDED, intended), (job_id, Event.SENT, time.monotonic_ns())]
            if len(rows) >= 2 * BATCH:
                self.producer.record_many(rows)
                rows = []
        if rows:
            self.producer.record_many(rows)
        self.meta["load_end_ns"] = time.monotonic_ns()
        return total

    def wait_for(self, expected: int, deadline_ns: int) -> None:
        """Poll the records until `expected` jobs ended or the deadline passed."""
        while True:
            self.done += count_events(self.records_dir, self._offsets, DONE_EVENTS)
            if self.done >= expected or time.monotonic_ns() >= deadline_ns:
                break
            time.sleep(0.02)
        self.meta["done_ns"] = time.monotonic_ns()
        self.meta["ended"] = self.done
        self.meta["timed_out"] = self.done < expected

    # -- the cell -----------------------------------------------------------
    def start(self) -> None:
        self.adapter.start_workers()
        self.meta["ready_ns"] = time.monotonic_ns()
        self.meta["worker_pids"] = self.adapter.worker_pids()
        self.adapter.begin()

    def run(self) -> None:
        kind = self.workload["type"]
        limit_ns = int(float(self.workload.get("time_limit_s", 60)) * 1e9)
        self.adapter.purge()
        self.meta["settings"] = self.adapter.settings()
        if kind == "batch":
            total = int(self.workload["jobs"])
            if self.workload.get("preload", False):
                self.send_all(total)
                self.start()
            else:
                self.start()
                self.send_all(total)
            self.meta["expected"] = total
            self.wait_for(total, self.meta["ready_ns"] + limit_ns)
        elif kind == "open":
            self.start()
            total = self.send_open_loop(float(self.workload["rate"]),
                                        float(self.workload["duration_s"]))
            self.meta["expected"] = total
            self.wait_for(total, time.monotonic_ns() + limit_ns)
        else:
            raise ValueError(f"unknown workload type {kind!r}")

    def finish(self) -> None:
        try:
            self.adapter.stop_workers()
            self.adapter.purge()
        finally:
            self.adapter.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="harness.driver")
    parser.add_argument("--cell", required=True, type=Path)
    args = parser.parse_args(argv)
    cell = json.loads(args.cell.read_text())
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
            result.update(driver.meta)
            driver.finish()
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
