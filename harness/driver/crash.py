"""The driver's side of the crash-recovery scenario (stdlib only).

Jobs are preloaded and the workers started by the driver; then:

1. wait until `kill_after_ends` jobs ended and at least `kill_in_flight`
   are running, then `kill_delay_s` more (those are mid-job; a worker that
   polls, like arq, may leave gaps between waves);
2. worker-kill: SIGKILL one job-executing process (adapter.kill_worker);
   broker-kill: ask the coordinator to kill -9 and restart the broker
   (harness.faults protocol);
3. watch a window of `window_s` from the moment the fault was handled
   (kill done, broker back), acting as a supervisor meanwhile: when a
   worker process the adapter started has exited (the killed one, or one
   that died of the fault, like Dramatiq's CLI after losing a child), start
   a fresh worker set next to the survivors (worker-kill: add_workers, the
   survivors keep their jobs) or restart the workers (broker-kill), twice
   at most, and reopen the window from there. A pool process or work horse
   that its own parent replaces (Celery, RQ) needs no supervisor. The
   window ends early once every job ended and `min_observe_s` passed since
   the kill (and, broker-kill, `observe_after_back_s` since the broker was
   back, as workers reconnect with a backoff), so a late duplicate (a
   redelivery after a timeout or a reconnect) still shows.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from adapters.base import Adapter
from core.protocol import CrashPhase, PhaseReport
from core.recorder import RECORD, Event
from harness.driver.cell import CellRun
from harness.faults import FAULT_DONE, FAULT_REQUEST

BROKER_RESTART_TIMEOUT_S = 120.0
MAX_RESTARTS = 2


class JobTracker:
    """Which job ids started and ended so far, read incrementally from the records."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.offsets: dict[Path, int] = {}
        self.started: set[int] = set()
        self.ended: set[int] = set()

    def update(self) -> None:
        for path in self.directory.glob("*.bin"):
            start = self.offsets.get(path, 0)
            with open(path, "rb") as handle:
                handle.seek(start)
                data = handle.read()
            whole = len(data) - len(data) % RECORD.size  # a partial tail waits for next time
            for job, event, _a, _p, _t in RECORD.iter_unpack(data[:whole]):
                if event == Event.START:
                    self.started.add(job)
                elif event == Event.END:
                    self.ended.add(job)
            self.offsets[path] = start + whole

    @property
    def running(self) -> int:
        return len(self.started - self.ended)


def dead_workers(adapter: Adapter) -> int:
    """How many worker processes the adapter started have exited.

    Adapters with separate workers keep them in a WorkerGroup (`workers`);
    only its started processes count, not pool children or work horses,
    which come and go by design.
    """
    started = getattr(getattr(adapter, "workers", None), "procs", [])
    return sum(proc.poll() is not None for proc in started)


def request_broker_kill(cell_dir: Path) -> dict[str, Any]:
    """Ask the coordinator to kill -9 and restart the broker; its answer (times in ns)."""
    tmp = cell_dir / (FAULT_REQUEST + ".tmp")
    tmp.write_text(json.dumps({"action": "broker-kill", "t_ns": time.monotonic_ns()}))
    tmp.replace(cell_dir / FAULT_REQUEST)
    done = cell_dir / FAULT_DONE
    deadline = time.monotonic() + BROKER_RESTART_TIMEOUT_S
    while not done.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the coordinator did not restart the broker within "
                               f"{BROKER_RESTART_TIMEOUT_S:.0f}s")
        time.sleep(0.02)
    answer: dict[str, Any] = json.loads(done.read_text())
    if answer.get("error"):
        raise RuntimeError(f"broker-kill failed: {answer['error']}")
    return answer


def run_crash(run: CellRun, spec: CrashPhase, phase: PhaseReport, first_id: int) -> None:
    """Steps 1-3 of the module doc; fills `phase` with the times the analysis needs."""
    adapter = run.adapter
    if spec.fault not in adapter.faults:
        raise RuntimeError(f"{run.cell.backend} adapter does not support {spec.fault}")
    jobs = JobTracker(run.records_dir)
    limit = time.monotonic() + spec.time_limit_s
    while not (len(jobs.ended) >= spec.kill_after_ends and jobs.running >= spec.kill_in_flight):
        if time.monotonic() > limit:
            phase.kill_wait_timed_out = True
            break
        time.sleep(0.005)
        jobs.update()
    time.sleep(spec.kill_delay_s)
    dead = dead_workers(adapter)
    if spec.fault == "worker-kill":
        killed = adapter.kill_worker()
        # After the call: the process is dead, so all its records are older than this.
        phase.kill_ns = time.monotonic_ns()
        if killed is None:
            raise RuntimeError(f"{run.cell.backend} adapter cannot kill a worker")
        phase.killed_pid = killed
        phase.pids_before = [killed, *adapter.worker_pids()]
        replace = adapter.add_workers
    elif spec.fault == "broker-kill":
        phase.pids_before = adapter.worker_pids()
        answer = request_broker_kill(run.cell_dir)
        phase.kill_ns, phase.dead_ns, phase.back_ns = (answer["kill_ns"], answer["dead_ns"],
                                                       answer["back_ns"])
        replace = adapter.restart_workers
    else:
        raise ValueError(f"unknown fault {spec.fault!r}")
    window_ns = int(spec.window_s * 1e9)
    phase.handled_ns = time.monotonic_ns()
    window_end = phase.handled_ns + window_ns
    quiet_end = phase.kill_ns + int(spec.min_observe_s * 1e9)
    if phase.back_ns is not None:  # workers retry with a backoff: give them time to reconnect
        quiet_end = max(quiet_end, phase.back_ns + int(spec.observe_after_back_s * 1e9))
    expected = set(range(first_id, first_id + spec.jobs))
    phase.workers_replaced = 0
    while (now := time.monotonic_ns()) < window_end:
        jobs.update()
        if expected <= jobs.ended and now >= quiet_end:
            break
        if phase.workers_replaced < MAX_RESTARTS and dead_workers(adapter) > dead:
            # A supervisor restarts what exited; the window reopens once it is back.
            replace()
            phase.workers_replaced += 1
            dead = dead_workers(adapter)
            window_end = max(window_end, time.monotonic_ns() + window_ns)
        time.sleep(0.02)
    phase.observed_until_ns = time.monotonic_ns()
    phase.timed_out = not expected <= jobs.ended
    run.tally.refresh()  # the END count for driver.json
