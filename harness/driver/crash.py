"""The driver's side of the crash-recovery scenario (stdlib only).

Jobs are preloaded and the workers started by the driver; then:

1. wait until `kill_after_ends` jobs ended and at least `kill_in_flight`
   are running, then `kill_delay_s` more (those are mid-job; a worker that
   polls, like arq, may leave gaps between waves);
2. the fault. The target comes from the records, not from the process
   tree: the pids with a START and no END are the processes running a job
   (a pool child, a work horse, a consumer), the newest first.
   job-process-kill SIGKILLs one of them (adapter.kill_job_process);
   node-kill SIGKILLs, all at once, the whole tree of the worker node that
   holds one (adapter.kill_node); broker-kill asks the coordinator to kill -9
   and restart the broker (harness.faults protocol);
3. watch a window of `window_s` from the moment the fault was handled
   (kill done, broker back), acting as a supervisor meanwhile: when a
   worker process the adapter started has exited (a killed node, or one
   that died of the fault, like Dramatiq's CLI after losing a child), start
   exactly what died (worker faults: adapter.replace_dead, the survivors
   keep their jobs) or restart the workers (broker-kill), twice at most,
   and reopen the window from there. A pool process or work horse that its
   own parent replaces (Celery, RQ) needs no supervisor. The slots the live
   workers can run are recorded before the kill, right after it and at the
   end, so a replacement is seen to restore what died and never more. The
   window ends early once every job ended and `min_observe_s` passed since
   the kill (and, broker-kill, `observe_after_back_s` since the broker was
   back, as workers reconnect with a backoff), so a late duplicate (a
   redelivery after a timeout or a reconnect) still shows;
4. jobs still missing at the end of the window are watched `late_grace_s`
   longer (the supervisor still on duty): those that end then are late, the
   rest lost (scenarios/crash_classify.py).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from adapters.base import WORKER_FAULTS, Adapter
from core.protocol import CrashPhase, PhaseReport
from core.recorder import RECORD, Event, RecordTail, expand_run
from harness.driver.cell import CellRun
from harness.faults import FAULT_DONE, FAULT_REQUEST

BROKER_RESTART_TIMEOUT_S = 120.0
MAX_RESTARTS = 2


class JobTracker:
    """Which job ids started and ended so far, and in which process each one last
    started, read incrementally from the records."""

    def __init__(self, directory: Path) -> None:
        self.records = RecordTail(directory)
        self.started: dict[int, tuple[int, int]] = {}  # job -> (pid, t_ns) of its last START
        self.ended: set[int] = set()

    def update(self) -> None:
        for data in self.records.read():
            for first, kind, length, pid, t_ns in RECORD.iter_unpack(data):
                for job, event in expand_run(first, kind, length):
                    if event == Event.START:
                        self.started[job] = (pid, t_ns)
                    elif event == Event.END:
                        self.ended.add(job)

    @property
    def running(self) -> int:
        return len(self.started.keys() - self.ended)

    def running_pids(self) -> list[int]:
        """Pids that run a job now (START, no END yet), the newest START first: the
        job least likely to end before a kill lands."""
        runs = sorted((self.started[job] for job in self.started.keys() - self.ended),
                      key=lambda run: -run[1])
        return list(dict.fromkeys(pid for pid, _t in runs))


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


def inject_worker_fault(adapter: Adapter, fault: str, running: list[int],
                        phase: PhaseReport) -> None:
    """SIGKILL what `fault` names among the processes running a job; fills the kill
    fields of `phase`."""
    if fault == "job-process-kill":
        pid = adapter.kill_job_process(running)
        killed = [] if pid is None else [pid]
    else:
        killed = adapter.kill_node(running)
    # After the call: the processes are dead, so all their records are older than this.
    phase.kill_ns = time.monotonic_ns()
    if not killed:
        raise RuntimeError(f"{fault}: none of the processes running a job ({running}) "
                           f"could be killed")
    phase.killed_pid, phase.killed_pids = killed[0], killed
    phase.pids_before = [*killed, *adapter.worker_pids()]


def run_crash(run: CellRun, spec: CrashPhase, phase: PhaseReport, first_id: int) -> None:
    """Steps 1-4 of the module doc; fills `phase` with the times the analysis needs."""
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
    jobs.update()
    run.clock.mark("until_kill")
    dead = adapter.dead_workers()
    phase.capacity_before = adapter.capacity()
    if spec.fault in WORKER_FAULTS:
        inject_worker_fault(adapter, spec.fault, jobs.running_pids(), phase)
        replace = adapter.replace_dead
    elif spec.fault == "broker-kill":
        phase.pids_before = adapter.worker_pids()
        answer = request_broker_kill(run.cell_dir)
        phase.kill_ns, phase.dead_ns, phase.back_ns = (answer["kill_ns"], answer["dead_ns"],
                                                       answer["back_ns"])
        replace = adapter.restart_workers
    else:
        raise ValueError(f"unknown fault {spec.fault!r}")
    phase.capacity_after_kill = adapter.capacity()
    window_ns = int(spec.window_s * 1e9)
    phase.handled_ns = time.monotonic_ns()
    run.clock.mark("fault")
    quiet_end = phase.kill_ns + int(spec.min_observe_s * 1e9)
    if phase.back_ns is not None:  # workers retry with a backoff: give them time to reconnect
        quiet_end = max(quiet_end, phase.back_ns + int(spec.observe_after_back_s * 1e9))
    expected = set(range(first_id, first_id + spec.jobs))
    phase.workers_replaced = 0

    def watch(until_ns: int, reopen: bool) -> None:
        """Supervise and read the records until `until_ns` or every job ended (and the
        quiet time passed); `reopen`: a replacement restarts the window from there."""
        nonlocal dead
        while (now := time.monotonic_ns()) < until_ns:
            jobs.update()
            if expected <= jobs.ended and now >= quiet_end:
                return
            if phase.workers_replaced < MAX_RESTARTS and adapter.dead_workers() > dead:
                # A supervisor restarts what exited; the window reopens once it is back.
                replace()
                phase.workers_replaced += 1
                dead = adapter.dead_workers()
                if reopen:
                    until_ns = max(until_ns, time.monotonic_ns() + window_ns)
            time.sleep(0.02)

    watch(phase.handled_ns + window_ns, reopen=True)
    phase.observed_until_ns = time.monotonic_ns()
    run.clock.mark("window")
    if not expected <= jobs.ended and spec.late_grace_s > 0:
        watch(phase.observed_until_ns + int(spec.late_grace_s * 1e9), reopen=False)
        phase.late_until_ns = time.monotonic_ns()
        run.clock.mark("late_watch")
    phase.capacity_after = adapter.capacity()
    phase.timed_out = not expected <= jobs.ended
    run.tally.refresh()  # the END count for driver.json
