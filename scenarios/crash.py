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
broker in the reliable profile, with Redis persistence off and
aof-everysec (RabbitMQ: transient and durable for amqp-raw, durable for
the libraries); --quick kills a worker in the run's profile only.
Recovery that needs a timeout runs with it set to TIMEOUT_S (recorded in
the cell's settings): Celery on Redis visibility_timeout, Dramatiq on
Redis heartbeat_timeout (with maintenance on every broker command, or the
dead worker's messages wait for a 0.1% chance per command).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from adapters import BACKENDS
from scenarios.base import CellFailed, CellPlan, RunOptions
from scenarios.crash_classify import classify

JOB_MS = 200
JOBS_PER_SLOT = {"worker-kill": 3, "broker-kill": 4}  # broker-kill: some still queued
TIMEOUT_S = 5.0
# After a broker restart, workers reconnect with a growing backoff (Celery's
# consumer retries after 2, 4, 6... s): watch at least this long after the
# broker is back, and this much longer when jobs are still missing.
RECONNECT_S = 8.0
PROFILES = ("default", "reliable")
# aof-always is not among them: a kill -9 of the server process loses nothing
# that aof-everysec has already written to the kernel; the two differ only when
# the machine itself goes down, which this harness does not simulate.
REDIS_PERSISTENCE: dict[str, dict[str, str]] = {
    "off": {"appendonly": "no"},
    "aof-everysec": {"appendonly": "yes", "appendfsync": "everysec"},
}
# Celery and Dramatiq declare durable queues and publish persistent messages
# on RabbitMQ by default and offer no switch in our adapters: one setting.
AMQP_PERSISTENCE = {"amqp-raw": ("transient", "durable")}
LIBRARY_DURABLE = ("durable",)

# The mechanisms behind the figures, from the libraries' docs and the worker logs;
# a cell's explanation quotes one only when its figures show that effect.
LOSS_ON_WORKER_KILL: dict[str, str] = {
    "asyncio": "asyncio keeps its jobs only in the memory of the process that was killed",
    "redis-raw": "BRPOP removes a message from Redis when a consumer fetches it",
    "celery-redis": "Celery acks a task when a pool process starts it (acks_late off), so a "
    "killed pool process's task is gone (WorkerLostError)",
    "celery-rabbitmq": "Celery acks a task when a pool process starts it (acks_late off), so a "
    "killed pool process's task is gone (WorkerLostError)",
    "rq": "RQ moves a job whose work horse was killed to the FailedJobRegistry instead of "
    "re-running it",
    "arq": "arq re-runs a killed worker's jobs only once their in-progress key expires "
    "(job_timeout 300 s + 10 s), long after the window",
}
RERUN_ON_WORKER_KILL: dict[str, str] = {
    "redis-raw": "a new consumer moved the dead consumer's processing list back to the queue",
    "amqp-raw": "RabbitMQ redelivers the unacked message of a closed connection",
    "celery-redis": "task_reject_on_worker_lost re-queues the task of a killed pool process",
    "celery-rabbitmq": "task_reject_on_worker_lost re-queues the task of a killed pool process",
    "dramatiq-redis": f"the dead worker's unacked messages were re-queued once its heartbeat "
    f"was older than heartbeat_timeout ({TIMEOUT_S:.0f} s)",
    "dramatiq-rabbitmq": "RabbitMQ redelivers the unacked messages of a closed connection",
    "rq": "Retry re-queues a job whose work horse was killed",
    "arq": "arq re-runs a job once its in-progress key expires",
}
LOSS_ON_BROKER_KILL: dict[str, str] = {
    "off": "Redis without persistence restarts empty",
    "transient": "a transient queue and its messages do not survive a RabbitMQ restart",
}


def timeout_options(backend: str) -> dict[str, Any]:
    """Shorten the timeouts some backends need before they re-deliver a dead worker's jobs."""
    if backend == "celery-redis":
        return {"visibility_timeout_s": TIMEOUT_S}
    if backend == "dramatiq-redis":
        return {"heartbeat_timeout_s": TIMEOUT_S, "maintenance_chance": 1_000_000}
    return {}


def persistences(backend: str) -> tuple[str, ...]:
    """The broker-kill persistence settings of `backend` (none without a broker)."""
    broker = BACKENDS[backend].broker
    if broker == "redis":
        return tuple(REDIS_PERSISTENCE)
    if broker == "amqp":
        return AMQP_PERSISTENCE.get(backend, LIBRARY_DURABLE)
    return ()


class CrashRecovery:
    name = "crash-recovery"
    description = "lost and duplicated jobs when a worker or the broker is killed (kill -9)"
    all_profiles = True  # plans default and reliable itself, whatever --profile says

    def plan(self, backend: str, options: RunOptions) -> list[CellPlan]:
        """Quick: worker-kill in the run's profile. Otherwise worker-kill in both
        profiles and broker-kill in the reliable one at every persistence setting."""
        if options.quick:
            return [self._cell(backend, options, options.profile, "worker-kill", None, 3.0)]
        cells = [self._cell(backend, options, profile, "worker-kill", None, 6.0)
                 for profile in PROFILES]
        cells += [self._cell(backend, options, "reliable", "broker-kill", persistence, 6.0)
                  for persistence in persistences(backend)]
        return cells

    def _cell(self, backend: str, options: RunOptions, profile: str, fault: str,
              persistence: str | None, base_s: float) -> CellPlan:
        jobs = JOBS_PER_SLOT[fault] * options.slots
        extra = timeout_options(backend)
        timeout = TIMEOUT_S if extra else 0.0
        broker_kill = None
        if backend == "asyncio":
            extra["asyncio_process"] = True
        if fault == "broker-kill":
            broker_kill = dict(REDIS_PERSISTENCE.get(persistence or "", {}))
            if backend == "amqp-raw":
                extra["amqp_durable"] = persistence == "durable"
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

    def analyze(self, plan: CellPlan, records: pd.DataFrame, meta: dict[str, Any]
                ) -> dict[str, Any]:
        phase = meta["phases"][0]
        if "kill_ns" not in phase:
            raise CellFailed("the fault was never injected")
        first = int(phase["first_id"])
        outcome = classify(records, range(first, first + int(plan.params["jobs"])),
                           int(phase["kill_ns"]), int(phase["observed_until_ns"]),
                           old_pids=phase.get("pids_before", []), back_ns=phase.get("back_ns"),
                           killed_pid=phase.get("killed_pid"))
        window_s = (int(phase["observed_until_ns"]) - int(phase["kill_ns"])) / 1e9
        outcome["window_s"] = round(window_s, 2)
        outcome["workers_replaced"] = int(phase.get("workers_replaced", 0))
        outcome["explanation"] = explain(plan, outcome)
        return outcome


def explain(plan: CellPlan, out: dict[str, Any]) -> str:
    """One sentence from the figures, naming the mechanism where they show one."""
    backend, fault = plan.backend, plan.params["fault"]
    last = out["recovery_s"]["last"]
    head = f"{out['lost']} of {out['jobs']} jobs lost, {out['duplicated']} run more than once"
    if fault == "worker-kill":
        if out["lost"]:
            parts = [f"{out['lost_in_flight_on_killed']} running on the killed process",
                     f"{out['lost_never_started']} never started"]
            cause = LOSS_ON_WORKER_KILL.get(backend, "see the worker logs")
            return f"{head} ({', '.join(parts)}): {cause}."
        if out["started_twice"]:
            cause = RERUN_ON_WORKER_KILL.get(backend, "the backend delivered them again")
            return (f"{head}: the {out['started_twice']} interrupted on the killed process ran "
                    f"again because {cause}; all done {last:.1f} s after the kill.")
        if not out["in_flight_on_killed"]:
            return (f"{head}: no job had started on the killed process when it died, so this "
                    f"cell shows no re-delivery either way.")
        return f"{head}: every job ran exactly once."
    if out["lost"]:
        cause = LOSS_ON_BROKER_KILL.get(plan.params["persistence"], "see the worker logs")
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
