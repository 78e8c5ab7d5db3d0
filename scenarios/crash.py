"""Crash recovery: what each backend really does when a worker or its broker dies.

worker-kill: 3 x slots jobs of 200 ms are preloaded; once the first wave
has ended and half the slots run jobs of the next, one job-executing
process is SIGKILLed (the adapter's kill_worker). broker-kill: 4 x slots
jobs, so some are still queued; the coordinator kill -9s the harness-owned
broker and restarts it on the same port and data dir. Either way the
driver then acts as a supervisor for a bounded window (harness/crash_phase.py:
a worker process that exited is replaced, the survivors are left alone)
and every job is classified from the records (scenarios/crash_classify.py):
lost, duplicated, once.

A full run has every backend kill a worker in both profiles and kill its
broker in the reliable profile at every persistence setting its broker
kind declares (core/brokers/: Redis off and aof-everysec; RabbitMQ
transient and durable for amqp-raw, durable for the libraries); --quick
kills a worker in the run's profile only.
Recovery that needs a timeout runs with it set to TIMEOUT_S (recorded in
the cell's settings): Celery on Redis visibility_timeout, Dramatiq on
Redis heartbeat_timeout (with maintenance on every broker command, or the
dead worker's messages wait for a 0.1% chance per command).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from adapters import BACKENDS
from core.brokers import broker_kind
from core.brokers.base import Persistence
from core.protocol import DriverReport
from scenarios import crash_views
from scenarios.base import CellFailed, CellPlan, Grids, Metric, RunOptions, Scenario
from scenarios.crash_classify import classify
from scenarios.presentation import ReportKit

JOB_MS = 200
JOBS_PER_SLOT = {"worker-kill": 3, "broker-kill": 4}  # broker-kill: some still queued
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
    worker_kill_profiles: tuple[str, ...] | None  # None: the run's profile
    broker_kill: bool  # in the reliable profile, at every persistence setting
    base_s: float  # observation window, before any redelivery timeout


class CrashRecovery(Scenario):
    name = "crash-recovery"
    title = "Crash recovery"
    description = "lost and duplicated jobs when a worker or the broker is killed (kill -9)"
    order = 50
    measures_speed = False
    all_profiles = True  # plans default and reliable itself, whatever --profile says
    grids = Grids(quick=Grid(None, False, 3.0), full=Grid(PROFILES, True, 6.0))
    metrics = {
        "jobs": Metric("jobs", doc="jobs of the cell"),
        "completed": Metric("jobs", doc="jobs that ended (once + duplicated)"),
        "once": Metric("jobs", doc="jobs started and ended exactly once"),
        "lost": Metric("jobs", "lower", doc="jobs that never ended in the window"),
        "duplicated": Metric("jobs", "lower", doc="jobs that ended and ran more than once"),
        "started_twice": Metric("jobs", doc="jobs started more than once"),
        "ended_twice": Metric("jobs", doc="jobs ended more than once"),
        "errors": Metric("jobs", "lower", doc="jobs that failed"),
        "ended_before_kill": Metric("jobs", doc="jobs that ended before the kill"),
        "in_flight_at_kill": Metric("jobs", doc="jobs running when the kill came"),
        "in_flight_on_killed": Metric("jobs", doc="running on the killed process"),
        "lost_in_flight_on_killed": Metric("jobs", doc="lost of those on the killed process"),
        "lost_never_started": Metric("jobs", doc="lost jobs that never started"),
        "recovery_s.*": Metric("s", "lower", doc="{first, last}: kill -> first END that "
                               "shows recovery, kill -> last END"),
        "window_s": Metric("s", doc="kill -> end of observation"),
        "workers_replaced": Metric(doc="worker processes the supervisor replaced"),
        "explanation": Metric(doc="one sentence naming the mechanism"),
    }

    def plan(self, backend: str, options: RunOptions) -> list[CellPlan]:
        """Quick: worker-kill in the run's profile. Otherwise worker-kill in both
        profiles and broker-kill in the reliable one at every persistence setting."""
        grid = self.grids.pick(options)
        cells = [self._cell(backend, options, profile, "worker-kill", None, grid.base_s)
                 for profile in grid.worker_kill_profiles or (options.profile,)]
        if grid.broker_kill:
            cells += [self._cell(backend, options, "reliable", "broker-kill", persistence,
                                 grid.base_s)
                      for persistence in persistences(backend)]
        return cells

    def _cell(self, backend: str, options: RunOptions, profile: str, fault: str,
              persistence: str | None, base_s: float) -> CellPlan:
        jobs = JOBS_PER_SLOT[fault] * options.slots
        extra = crash_options(backend)
        timeout = TIMEOUT_S if BACKENDS[backend].crash.timeout_options else 0.0
        broker_kill = None
        if fault == "broker-kill":
            setting = persistence_of(backend, persistence or "")
            broker_kill = dict(setting.server_options)
            if backend in DURABILITY_SWITCH:
                extra[DURABILITY_SWITCH[backend]] = setting.durable
        phase = {"type": "crash", "fault": fault, "jobs": jobs, "kill_after_ends": options.slots,
                 "kill_in_flight": max(1, options.slots // 2), "kill_delay_s": JOB_MS / 4000,
                 "window_s": base_s + timeout, "min_observe_s": timeout + 1.5,
                 "time_limit_s": 60}
        if fault == "broker-kill":
            phase.update(window_s=base_s + timeout + RECONNECT_S, observe_after_back_s=RECONNECT_S)
        return CellPlan(
            scenario=self.name, backend=backend,
            params={"fault": fault, "mode": profile, "persistence": persistence, "jobs": jobs},
            workload={"spec": {"kind": "sleep", "ms": JOB_MS}, "phases": [phase]},
            timeout_s=300 + base_s + timeout, profile=profile, options=extra,
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
                           old_pids=phase.pids_before or [], back_ns=phase.back_ns,
                           killed_pid=phase.killed_pid)
        window_s = (phase.observed_until_ns - phase.kill_ns) / 1e9
        outcome["window_s"] = round(window_s, 2)
        outcome["workers_replaced"] = int(phase.workers_replaced or 0)
        outcome["explanation"] = explain(plan, outcome)
        return outcome

    def headline(self, metrics: dict[str, Any]) -> str:
        return f"lost {metrics['lost']}, duplicated {metrics['duplicated']}"

    def tables(self, kit: ReportKit) -> list[Any]:
        return crash_views.tables(kit)

    def charts(self, kit: ReportKit) -> list[Any]:
        return crash_views.charts(kit)


def explain(plan: CellPlan, out: dict[str, Any]) -> str:
    """One sentence from the figures, naming the mechanism where they show one."""
    backend, fault = plan.backend, plan.params["fault"]
    crash = BACKENDS[backend].crash
    last = out["recovery_s"]["last"]
    head = f"{out['lost']} of {out['jobs']} jobs lost, {out['duplicated']} run more than once"
    if fault == "worker-kill":
        if out["lost"]:
            parts = [f"{out['lost_in_flight_on_killed']} running on the killed process",
                     f"{out['lost_never_started']} never started"]
            cause = crash.loss_on_worker_kill or "see the worker logs"
            return f"{head} ({', '.join(parts)}): {cause}."
        if out["started_twice"]:
            cause = (crash.rerun_on_worker_kill or "the backend delivered them again").format(
                timeout_s=TIMEOUT_S)
            return (f"{head}: the {out['started_twice']} interrupted on the killed process ran "
                    f"again because {cause}; all done {last:.1f} s after the kill.")
        if not out["in_flight_on_killed"]:
            return (f"{head}: no job had started on the killed process when it died, so this "
                    f"cell shows no re-delivery either way.")
        return f"{head}: every job ran exactly once."
    if out["lost"]:
        cause = (persistence_of(backend, plan.params["persistence"]).loss
                 or "see the worker logs")
        twice = f"; {out['duplicated']} jobs ran more than once" if out["duplicated"] else ""
        return f"{head}: {cause}{twice}."
    if out["duplicated"]:
        return (f"{head}: nothing lost, but {out['started_twice']} jobs started twice and "
                f"{out['ended_twice']} ended twice, as work in progress or prefetched when the "
                f"broker died was delivered again after it came back; all done {last:.1f} s "
                f"after the kill.")
    done = f"; all done {last:.1f} s after the kill" if last is not None else ""
    return f"{head}: every queued job survived the restart and ran exactly once{done}."


CRASH_RECOVERY = CrashRecovery()
