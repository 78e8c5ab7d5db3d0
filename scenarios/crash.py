"""Crash recovery: what each backend really does when a worker or its broker dies.

Worker faults, 3 x slots jobs of 200 ms preloaded; once the first wave has
ended and half the slots run jobs of the next, the driver SIGKILLs, chosen
from the records (a pid with a START and no END):
- job-process-kill: the process running a job (a Celery pool child, an RQ
  work horse, a Dramatiq worker process, an arq or raw consumer, the
  asyncio app's process);
- node-kill: one worker node's whole process tree at once (Celery's main
  process with its pool, RQ's worker with its horse, the Dramatiq master with
  its workers). Where a backend runs its jobs in the node's own process (no
  pool) the two are the same kill: its backend.toml says why
  (node_is_job_process) and the cell runs once.
broker-kill: 4 x slots jobs, so some are still queued; the coordinator kill
-9s the harness-owned broker and restarts it on the same port and data dir.
Either way the driver then acts as a supervisor for a bounded window
(harness/driver/crash.py: it starts exactly what died, and records the slots
before the kill, after it and at the end; 4 s in a full run, 3 s in a quick
one, plus the backend's re-delivery delay), watches jobs still missing 2 s
longer, and every job is classified from the records
(scenarios/crash_classify.py): lost, late, once, duplicated.

A full run has every backend take both worker faults in both profiles and a
broker kill in the reliable profile at every persistence setting its broker
kind declares (core/brokers/: Redis off and aof-everysec; RabbitMQ transient
and durable for amqp-raw, durable for the libraries); --quick kills a job
process in the run's profile only. Every timeout a backend waits before it
re-delivers a dead worker's jobs is shortened to TIMEOUT_S (recorded in the
cell's settings), so the re-delivery falls inside the window: Celery on
Redis visibility_timeout, Dramatiq on Redis heartbeat_timeout, arq's
job_timeout (its in-progress key lives 10 s longer, which arq fixes), saq's
job timeout, the stream backends' idle timeout, the PostgreSQL backends'
heartbeat or stalled-job timeout. In a profile where nothing re-delivers a dead
worker's jobs (backend.toml `timeout_profiles`), the cell waits no timeout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from adapters import BACKENDS
from adapters.base import WORKER_FAULTS
from core.brokers import broker_kind
from core.brokers.base import Persistence
from core.protocol import DriverReport
from core.words import counted
from scenarios import crash_views
from scenarios.base import CellFailed, CellPlan, Grids, Metric, RunOptions, Scenario
from scenarios.crash_classify import classify
from scenarios.presentation import ReportKit

JOB_MS = 200
JOBS_PER_SLOT = {"job-process-kill": 3, "node-kill": 3, "broker-kill": 4}  # broker: some queued
TIMEOUT_S = 5.0
# After a broker restart, workers reconnect with a growing backoff (Celery's
# consumer retries after 2, 4, 6... s): watch at least this long after the
# broker is back, and this much longer when jobs are still missing.
RECONNECT_S = 8.0
PROFILES = ("default", "reliable")
# Backends that choose the broker's durability themselves where it is the client's
# choice (a broker kind with a client_default_persistence), and their adapter option.
DURABILITY_SWITCH = {"amqp-raw": "amqp_durable"}


def crash_options(backend: str) -> dict[str, Any]:
    """The options a backend's crash cells run with (its backend.toml [crash]): the
    timeouts it needs before it re-delivers a dead worker's jobs, shortened to TIMEOUT_S,
    then any others."""
    crash = BACKENDS[backend].crash
    return {**{name: TIMEOUT_S for name in crash.timeout_options}, **crash.options}


def redelivery_s(backend: str, profile: str) -> float:
    """Seconds after which `backend` re-delivers a dead worker's jobs in `profile` when its
    cells shorten the timeouts (0: at once, by the broker, or never)."""
    crash = BACKENDS[backend].crash
    if not crash.timeout_options or profile not in (crash.timeout_profiles or (profile,)):
        return 0.0
    return TIMEOUT_S + crash.redelivery_extra_s


def worker_faults(backend: str) -> tuple[str, ...]:
    """Both worker faults, or job-process-kill alone where a node is the job's process."""
    return WORKER_FAULTS[:1] if BACKENDS[backend].crash.node_is_job_process else WORKER_FAULTS


def persistences(backend: str) -> tuple[str, ...]:
    """The broker-kill persistence settings of `backend` (none without a broker)."""
    broker = BACKENDS[backend].broker
    if broker is None:
        return ()
    kind = broker_kind(broker)
    if kind.client_default_persistence and backend not in DURABILITY_SWITCH:
        return (kind.client_default_persistence,)
    return tuple(kind.persistence)


def persistence_of(backend: str, name: str) -> Persistence:
    """The persistence setting `name` of the broker `backend` runs on."""
    return broker_kind(BACKENDS[backend].broker or "").persistence[name]


@dataclass(frozen=True)
class Grid:
    all_worker_faults: bool  # both worker faults, or job-process-kill only
    worker_kill_profiles: tuple[str, ...] | None  # None: the run's profile
    broker_kill: bool  # in the reliable profile, at every persistence setting
    base_s: float  # observation window, before any redelivery timeout
    late_grace_s: float  # the late watch, where jobs are still missing


class CrashRecovery(Scenario):
    name = "crash-recovery"
    title = "Crash recovery"
    description = "lost and duplicated jobs when a worker or the broker is killed (kill -9)"
    order = 50
    measures_speed = False
    all_profiles = True  # plans default and reliable itself, whatever --profile says
    # The window already holds the re-delivery delay plus base_s, and no job missing at a
    # window's end has ended in a late watch in any committed run, quick or full (whose
    # watch lasted max(5 s, the delay) until 2026-12-03): a short watch for both.
    grids = Grids(quick=Grid(False, None, False, 3.0, 2.0),
                  full=Grid(True, PROFILES, True, 4.0, 2.0))
    metrics = {
        "jobs": Metric("jobs", doc="jobs of the cell"),
        "completed": Metric("jobs", doc="jobs that ended (once + duplicated)"),
        "once": Metric("jobs", doc="jobs started and ended exactly once in the window"),
        "lost": Metric("jobs", "lower", doc="jobs with no END by the end of the late watch"),
        "late": Metric("jobs", "lower", doc="jobs that ended only in the late watch, after the "
                       "window (re-delivered after a timeout)"),
        "duplicated": Metric("jobs", "lower", doc="jobs that ended in the window and ran "
                             "more than once"),
        "started_twice": Metric("jobs", doc="jobs started more than once"),
        "ended_twice": Metric("jobs", doc="jobs ended more than once"),
        "errors": Metric("jobs", "lower", doc="jobs that failed"),
        "ended_before_kill": Metric("jobs", doc="jobs that ended before the kill"),
        "in_flight_at_kill": Metric("jobs", doc="jobs running when the kill came"),
        "in_flight_on_killed": Metric("jobs", doc="running on the killed process(es)"),
        "untested": Metric(doc="bool: a worker fault whose kill hit no running job, so the "
                               "cell shows nothing about re-delivery"),
        "lost_in_flight_on_killed": Metric("jobs", doc="lost of those on the killed process"),
        "lost_never_started": Metric("jobs", doc="lost jobs that never started"),
        "recovery_s.*": Metric("s", "lower", doc="{first, last}: kill -> first and last END of "
                               "a job running on a killed process or queued at the kill; "
                               "rerun: kill -> first END of a killed process's job"),
        "window_s": Metric("s", doc="kill -> end of the window"),
        "late_watch_s": Metric("s", doc="how long missing jobs were watched after the window"),
        "redelivery_s": Metric("s", doc="the shortened delay after which the backend "
                               "re-delivers a dead worker's jobs (0: at once or never)"),
        "killed_processes": Metric(doc="processes the kill took (node-kill: the tree)"),
        "capacity.*": Metric("slots", doc="{before, after_kill, after}: slots the live workers "
                             "could run before the kill, right after it, at the end"),
        "workers_replaced": Metric(doc="times the supervisor started what died"),
        "explanation": Metric(doc="one sentence naming the mechanism"),
    }

    def plan(self, backend: str, options: RunOptions) -> list[CellPlan]:
        """Quick: job-process-kill in the run's profile. Otherwise both worker faults in
        both profiles and broker-kill in the reliable one at every persistence setting."""
        grid = self.grids.pick(options)
        faults = worker_faults(backend) if grid.all_worker_faults else WORKER_FAULTS[:1]
        cells = [self._cell(backend, options, profile, fault, None, grid)
                 for profile in grid.worker_kill_profiles or (options.profile,)
                 for fault in faults]
        if grid.broker_kill:
            cells += [self._cell(backend, options, "reliable", "broker-kill", persistence, grid)
                      for persistence in persistences(backend)]
        return cells

    def _cell(self, backend: str, options: RunOptions, profile: str, fault: str,
              persistence: str | None, grid: Grid) -> CellPlan:
        jobs = JOBS_PER_SLOT[fault] * options.slots
        extra = crash_options(backend)
        delay = redelivery_s(backend, profile)
        broker_kill = None
        if fault == "broker-kill":
            setting = persistence_of(backend, persistence or "")
            broker_kill = dict(setting.server_options)
            if backend in DURABILITY_SWITCH:
                extra[DURABILITY_SWITCH[backend]] = setting.durable
        phase = {"type": "crash", "fault": fault, "jobs": jobs, "kill_after_ends": options.slots,
                 "kill_in_flight": max(1, options.slots // 2), "kill_delay_s": JOB_MS / 4000,
                 "window_s": grid.base_s + delay, "min_observe_s": delay + 1.5,
                 "late_grace_s": grid.late_grace_s,
                 "time_limit_s": 60}
        if fault == "broker-kill":
            phase.update(window_s=grid.base_s + delay + RECONNECT_S,
                         observe_after_back_s=RECONNECT_S)
        return CellPlan(
            scenario=self.name, backend=backend,
            params={"fault": fault, "mode": profile, "persistence": persistence, "jobs": jobs},
            workload={"spec": {"kind": "sleep", "ms": JOB_MS}, "phases": [phase]},
            timeout_s=300 + 2 * (grid.base_s + delay), profile=profile, options=extra,
            broker_kill=broker_kill,
        )

    def analyze(self, plan: CellPlan, records: pd.DataFrame, report: DriverReport
                ) -> dict[str, Any]:
        phase = report.phases[0]
        if phase.kill_ns is None or phase.observed_until_ns is None:
            raise CellFailed("the fault was never injected")
        first = phase.first_id
        outcome = classify(records, range(first, first + int(plan.params["jobs"])),
                           phase.kill_ns, phase.observed_until_ns,
                           late_end_ns=phase.late_until_ns,
                           killed_pids=phase.killed_pids or [])
        late_end = phase.late_until_ns or phase.observed_until_ns
        outcome["window_s"] = round((phase.observed_until_ns - phase.kill_ns) / 1e9, 2)
        outcome["late_watch_s"] = round((late_end - phase.observed_until_ns) / 1e9, 2)
        outcome["redelivery_s"] = redelivery_s(plan.backend, plan.profile)
        outcome["killed_processes"] = len(phase.killed_pids or [])
        outcome["capacity"] = {"before": phase.capacity_before,
                               "after_kill": phase.capacity_after_kill,
                               "after": phase.capacity_after}
        outcome["workers_replaced"] = int(phase.workers_replaced or 0)
        outcome["untested"] = bool(plan.params["fault"] in WORKER_FAULTS
                                   and not outcome["in_flight_on_killed"])
        outcome["explanation"] = explain(plan, outcome)
        return outcome

    def headline(self, metrics: dict[str, Any]) -> str:
        late = f", late {metrics['late']}" if metrics.get("late") else ""
        return f"lost {metrics['lost']}{late}, duplicated {metrics['duplicated']}"

    def tables(self, kit: ReportKit) -> list[Any]:
        return crash_views.tables(kit)

    def charts(self, kit: ReportKit) -> list[Any]:
        return crash_views.charts(kit)


def explain(plan: CellPlan, out: dict[str, Any]) -> str:
    """One sentence from the figures, naming the mechanism where they show one."""
    backend, fault = plan.backend, plan.params["fault"]
    crash = BACKENDS[backend].crash
    last = out["recovery_s"]["last"]
    late = f", {out['late']} late" if out.get("late") else ""
    head = (f"{out['lost']} of {out['jobs']} jobs lost{late}, {out['duplicated']} run more "
            f"than once")
    if late:
        head += (f" ({out['late']} ended only in the {out['late_watch_s']:.0f} s after the "
                 f"window)")
    if fault in WORKER_FAULTS:
        node = fault == "node-kill"
        what = "killed node" if node else "killed process"
        if out["lost"]:
            parts = [f"{out['lost_in_flight_on_killed']} running on the {what}",
                     f"{out['lost_never_started']} never started"]
            cause = ((node and crash.loss_on_node_kill) or crash.loss_on_worker_kill
                     or "see the worker logs")
            return f"{head} ({', '.join(parts)}): {cause}."
        if out["started_twice"] or out.get("late"):
            cause = ((node and crash.rerun_on_node_kill) or crash.rerun_on_worker_kill
                     or "the backend delivered them again").format(timeout_s=TIMEOUT_S)
            return (f"{head}: the jobs interrupted on the {what} ran again because {cause}; "
                    f"all done {last:.1f} s after the kill.")
        if not out["in_flight_on_killed"]:
            return (f"{head}: no job had started on the {what} when it died, so this "
                    f"cell shows no re-delivery either way.")
        return f"{head}: every job ran exactly once."
    if out["lost"]:
        cause = (persistence_of(backend, plan.params["persistence"]).loss
                 or "see the worker logs")
        twice = (f"; {counted(out['duplicated'], 'job')} ran more than once"
                 if out["duplicated"] else "")
        return f"{head}: {cause}{twice}."
    if out["duplicated"]:
        return (f"{head}: nothing lost, but {counted(out['started_twice'], 'job')} started "
                f"twice and {out['ended_twice']} ended twice, as work in progress or "
                f"prefetched when the broker died was delivered again after it came back; all "
                f"done {last:.1f} s after the kill.")
    done = f"; all done {last:.1f} s after the kill" if last is not None else ""
    return f"{head}: every queued job survived the restart and ran exactly once{done}."


CRASH_RECOVERY = CrashRecovery()
