"""The driver: runs a group of cells in the backend's own environment.

    .venvs/<family>/bin/python -m harness.driver CELL_DIR/cell.json [CELL_DIR/cell.json ...]

It builds the backend's adapter once, starts its real workers when a cell
first needs them and keeps them for the following cells of the group (the
runner groups cells with identical backend settings), produces each cell's
load (recording INTENDED and SENT per job), waits for the jobs to end or
for the time limit, and writes each cell's driver.json next to its records
as soon as the cell is done. Between cells the queue is purged and the
jobs still running are let finish, so a cell never measures its
predecessor's work. Stdlib plus the backend library only.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from adapters import load_adapter
from adapters.base import Adapter, AdapterConfig, JobCall
from core import interrupts
from core.envnames import BROKER_URL_ENV, GATE_ENV
from core.recorder import GATE_FILE, ID_SPAN, Event, Recorder, count_events
from harness.crash_phase import run_crash
from harness.memprobe import measure_memory

DONE_EVENTS = frozenset({Event.END, Event.ERROR})
STARTED = frozenset({Event.START})
BATCH = 250
QUIESCE_S = 10.0  # longest wait for the previous cell's running jobs to finish
BIND_TIMEOUT_S = 600.0  # the coordinator binds the next cell within moments
SATURATED_DRAIN_NS = 1_000_000_000  # how long a saturated open-loop cell still collects


class Workers:
    """The adapter of a group and whether its workers run; they outlive single cells."""

    def __init__(self, first: dict[str, Any], cells_root: Path, log_dir: Path) -> None:
        os.environ[GATE_ENV] = "1"  # workers inherit it: their jobs wait at their cell's gate
        self.config = AdapterConfig(
            backend=first["backend"], broker_url=first.get("broker_url"), slots=first["slots"],
            profile=first.get("profile", "default"), results=first.get("results", False),
            queue=first["queue"], records_dir=cells_root, log_dir=log_dir,
            options=first.get("options", {}),
        )
        self.adapter: Adapter = load_adapter(first["backend"])(self.config)
        self.running = False

    def ensure_running(self) -> float | None:
        """Start the workers if they are not up; the seconds it took, or None."""
        if self.running:
            return None
        began = time.monotonic()
        self.adapter.start_workers()
        self.running = True
        return round(time.monotonic() - began, 3)

    def stop(self) -> float:
        began = time.monotonic()
        if self.running:
            self.running = False
            self.adapter.stop_workers()
        return round(time.monotonic() - began, 3)

    def close(self) -> None:
        try:
            self.stop()
            self.adapter.purge()
            self.adapter.remove_queue()
        except Exception as exc:  # noqa: BLE001 - results are written; e.g. a killed broker
            print(f"cleanup after the group failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        finally:
            self.adapter.close()


class Driver:
    """One cell of the group."""

    def __init__(self, cell: dict[str, Any], cell_dir: Path, workers: Workers) -> None:
        self.cell = cell
        self.cell_dir = cell_dir
        self.records_dir = cell_dir / "records"
        self.records_dir.mkdir(parents=True, exist_ok=True)
        self.workload: dict[str, Any] = cell["workload"]
        self.meta: dict[str, Any] = {"bulk_enqueue": False,
                                     "worker_log_dir": str(workers.config.log_dir)}
        self.producer = Recorder(self.records_dir)
        self._offsets: dict[Path, int] = {}
        self.done = 0
        self.payload = incompressible_text(int(self.workload.get("payload_bytes", 0)))
        self.base = int(cell["index"]) * ID_SPAN  # job ids of this cell: base + n
        self.workers = workers
        self.config = workers.config
        self.adapter = workers.adapter

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

    def send_all(self, first_id: int, total: int, phase: dict[str, Any],
                 limit_s: float | None = None) -> int:
        """Enqueue `total` jobs as fast as the producer can, or as many as fit in
        `limit_s` seconds (in batches of BATCH); returns how many were sent."""
        bulk = bool(self.workload.get("bulk", True)) and self.adapter.bulk_api
        self.meta["bulk_enqueue"] = bulk
        phase["load_start_ns"] = time.monotonic_ns()
        stop_ns = phase["load_start_ns"] + int(limit_s * 1e9) if limit_s else None
        sent = 0
        while sent < total and (stop_ns is None or time.monotonic_ns() < stop_ns):
            count = min(BATCH, total - sent)
            self._send(first_id + sent, count, bulk)
            sent += count
        phase["load_end_ns"] = time.monotonic_ns()
        return sent

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

    def clear_backlog(self, phase: dict[str, Any]) -> None:
        """Purge what an earlier, time-boxed phase left queued and let the jobs workers
        already hold end, so the next phase measures an idle system."""
        self.adapter.purge()
        deadline = time.monotonic() + QUIESCE_S
        ended = -1
        while self.done != ended and time.monotonic() < deadline:
            ended = self.done
            time.sleep(0.2)
            self.done += count_events(self.records_dir, self._offsets, DONE_EVENTS)
        phase["backlog_purged"] = True

    def _backlog(self, sent: int) -> int:
        """Jobs of this cell sent but not started yet."""
        return sent - count_events(self.records_dir, {}, STARTED)

    def wait_for(self, expected: int, deadline_ns: int) -> bool:
        """Poll the records until `expected` jobs of this cell ended; False on deadline."""
        while True:
            self.done += count_events(self.records_dir, self._offsets, DONE_EVENTS)
            if self.done >= expected:
                return True
            if time.monotonic_ns() >= deadline_ns:
                return False
            time.sleep(0.005 if expected - self.done < 4 else 0.02)

    # -- the cell -----------------------------------------------------------
    def start(self) -> None:
        """Workers up (started now or kept from the previous cell), then open the gate."""
        if "ready_ns" in self.meta:
            return
        started_in = self.workers.ensure_running()
        if started_in is not None:
            self.meta["workers_start_s"] = started_in
        self.meta["workers_reused"] = started_in is None
        self.meta["worker_pids"] = self.adapter.worker_pids()
        self.meta["ready_ns"] = time.monotonic_ns()
        (self.cell_dir / GATE_FILE).touch()
        self.adapter.begin()

    def run(self) -> None:
        self.adapter.purge()
        self.meta["settings"] = self.adapter.settings()
        self.meta["phases"] = []
        sent = 0
        for index, spec in enumerate(self.workload["phases"]):
            phase: dict[str, Any] = {"type": spec["type"], "first_id": self.base + sent}
            self.meta["phases"].append(phase)
            phase["expected"] = self.run_phase(index, spec, phase, self.base + sent, sent)
            sent += phase["expected"]
        self.meta["expected"] = sent
        self.meta["ended"] = self.done

    def run_phase(self, index: int, spec: dict[str, Any], phase: dict[str, Any],
                  first_id: int, sent_before: int) -> int:
        """Run one phase; returns how many jobs it sent."""
        kind = spec["type"]
        limit_ns = int(float(spec.get("time_limit_s", 60)) * 1e9)
        if kind == "batch":
            enqueue_limit = spec.get("enqueue_limit_s")
            if spec.get("preload", False) and index == 0:
                total = self.send_all(first_id, int(spec["jobs"]), phase, enqueue_limit)
                self.start()
            else:
                self.start()
                total = self.send_all(first_id, int(spec["jobs"]), phase, enqueue_limit)
            deadline = max(self.meta["ready_ns"], phase["load_start_ns"]) + limit_ns
        elif kind == "open":
            if not spec.get("without_workers"):  # the self-test times the producer alone
                self.start()
            total = self.send_open_loop(first_id, float(spec["rate"]), float(spec["duration_s"]),
                                        phase, int(spec.get("producers", 1)),
                                        spec.get("max_jobs"))
            deadline = time.monotonic_ns() + limit_ns
            if "saturated_backlog" in spec and self._backlog(total) > spec["saturated_backlog"]:
                # saturated whatever happens next: no need to watch the whole backlog drain
                phase["drain_cut_short"] = True
                deadline = time.monotonic_ns() + SATURATED_DRAIN_NS
        elif kind == "idle":
            self.start()
            if spec.get("purge_first"):
                self.clear_backlog(phase)
            total = int(spec["jobs"])
            self.send_one_at_a_time(first_id, total, float(spec.get("gap_ms", 50)) / 1000,
                                    time.monotonic_ns() + limit_ns, phase)
            deadline = time.monotonic_ns()
        elif kind == "fill":  # memory: jobs sit in the broker, no worker may run
            self.meta["workers_stop_s"] = self.workers.stop()
            total = int(spec["jobs"])
            phase["memory_before"] = measure_memory(self.cell)
            self.send_all(first_id, total, phase)
            time.sleep(float(spec.get("settle_s", 0.5)))
            phase["memory_after"] = measure_memory(self.cell, final=True)
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
        phase["timed_out"] = not self.wait_for(sent_before + total, deadline)
        phase["done_ns"] = time.monotonic_ns()
        return total

    def settle(self) -> None:
        """Leave the queue empty and no job of this cell running, for the next cell.

        Purge what is queued; jobs a worker already holds (prefetched or
        running) finish into this cell's records. If they do not within
        QUIESCE_S, the workers are stopped so the next cell starts fresh ones.
        """
        began = time.monotonic()
        if self.meta.get("fault"):  # a fault may leave workers half-dead: never reuse them
            self.meta["workers_stop_s"] = self.workers.stop()
        if self.workers.running:
            try:
                self.adapter.purge()
            except Exception as exc:  # noqa: BLE001 - e.g. the broker was killed on purpose
                self.meta["purge_error"] = f"{type(exc).__name__}: {exc}"[:300]
            offsets: dict[Path, int] = {}
            started = 0
            deadline = time.monotonic() + QUIESCE_S
            while time.monotonic() < deadline:
                started += count_events(self.records_dir, offsets, STARTED)
                self.done += count_events(self.records_dir, self._offsets, DONE_EVENTS)
                if self.done >= started:
                    break
                time.sleep(0.02)
            else:
                self.meta["workers_stop_s"] = self.workers.stop()
        self.meta["settle_s"] = round(time.monotonic() - began, 3)


def incompressible_text(size: int) -> str:
    """`size` characters of random base64: JSON-safe, and a serializer that
    compresses (RQ's zlib) cannot shrink it to nothing as it would "xxxx"."""
    return base64.b64encode(os.urandom(size * 3 // 4 + 3)).decode()[:size]


def read_cell(path: Path, timeout_s: float = BIND_TIMEOUT_S) -> dict[str, Any]:
    """A cell's spec, once the coordinator has bound it (written after the cells before
    it ended, as its parameters may depend on their results)."""
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} was not written within {timeout_s:.0f}s")
        time.sleep(0.01)
    cell = json.loads(path.read_text())
    cell["broker_url"] = os.environ.get(BROKER_URL_ENV) or cell.get("broker_url")
    return cell


def run_group(cell_files: list[Path]) -> int:
    """Run every cell in order with one adapter; driver.json per cell as it ends."""
    first_dir = cell_files[0].parent
    workers = Workers(read_cell(cell_files[0]), first_dir.parent,
                      first_dir.parent.parent / "logs" / first_dir.name)
    code = 0
    try:
        for path in cell_files:
            cell, cell_dir = read_cell(path), path.parent
            if cell.get("skip"):  # the coordinator answered it without a run
                continue
            result: dict[str, Any] = {"pid": os.getpid()}
            driver = Driver(cell, cell_dir, workers)
            try:
                driver.run()
            except interrupts.Interrupted as exc:
                result["error"] = f"interrupted by {exc}"
                code = 130
            except Exception as exc:  # noqa: BLE001 - reported to the coordinator
                result["error"] = f"{type(exc).__name__}: {exc}".strip()
                result["traceback"] = traceback.format_exc()
                workers.stop()  # unknown state: the next cell starts fresh workers
            if code == 0:
                driver.settle()
            result.update(driver.meta)
            write_result(cell_dir, result)
            if code:
                break
    finally:
        workers.close()
    return code


def write_result(cell_dir: Path, result: dict[str, Any]) -> None:
    tmp = cell_dir / "driver.json.tmp"
    tmp.write_text(json.dumps(result, indent=1, default=str))
    tmp.replace(cell_dir / "driver.json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="harness.driver")
    parser.add_argument("cells", nargs="+", type=Path, help="cell.json files, run in order")
    args = parser.parse_args(argv)
    try:
        with interrupts.handled():
            return run_group(args.cells)
    except interrupts.Interrupted:
        return 130


if __name__ == "__main__":
    sys.exit(main())
