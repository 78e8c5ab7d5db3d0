"""procrastinate: asyncio jobs in PostgreSQL rows (psycopg 3), run by its own worker CLI.

Slots map to P worker processes (adapters/slots.py) of `--concurrency`
slots / P coroutines each. Workers wake on LISTEN/NOTIFY (the default; a
5 s poll as fallback) and claim one job per fetch with the library's
procrastinate_fetch_job function. Finished jobs stay in the table with
their status (delete_jobs="never", the default) until the next cell's purge.

The producer keeps one private event loop for its App (an async psycopg
pool): each enqueue is one `defer_async`, a batch one `batch_defer_async`
(a multi-row insert, procrastinate's bulk API). The schema is applied once
per database, as `procrastinate schema --apply` would.

Second queue (depth cells): a job priority, procrastinate's documented way to run
urgent jobs first. `--queues` is only a filter (a job of any listed queue, no order
between them); the worker's fetch (procrastinate_fetch_job_v2) takes the `todo` job
with the highest priority, then the lowest id. So the probe goes on the same queue
with priority SECOND_PRIORITY (the backlog has the default 0) and is fetched by the
next free slot, ahead of the whole backlog: nothing is prefetched.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import procrastinate
import psycopg
from procrastinate.schema import SchemaManager

from adapters.base import (
    SECOND_PRIORITY,
    STATISTICS_AFTER_FILL,
    AdapterConfig,
    JobCall,
    RequiredSettings,
    results_unsupported,
)
from adapters.event_loop import PrivateLoop
from adapters.procrastinate.app import (
    TASK_NAME,
    build_app,
    stalled_settings,
    worker_environment,
)
from adapters.slots import slot_map
from adapters.workers import WorkerGroup, WorkerProcessAdapter, console_script, worker_env

TIMEOUT_S = 30.0
PROCRASTINATE_TABLES = "procrastinate_jobs"  # TRUNCATE ... CASCADE takes events and defers


def apply_schema(conn: psycopg.Connection) -> None:
    """procrastinate's schema, once per database (producers may race to it)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('queuebench procrastinate'))")
        if conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone() == (None,):
            conn.execute(SchemaManager.get_schema())


class ProcrastinateAdapter(WorkerProcessAdapter):
    bulk_api = True  # Task.batch_defer_async
    async_jobs = True
    second_queue = (f"procrastinate: priority {SECOND_PRIORITY} on the same queue; the worker "
                    "fetches by priority, then id")

    def __init__(self, config: AdapterConfig) -> None:
        super().__init__(config)
        if not config.broker_url:
            raise ValueError("procrastinate needs a PostgreSQL broker URL")
        self.processes, self.concurrency = slot_map(config.slots, config.cpu_count)
        stalled = config.options.get("stalled_timeout_s")
        self.stalled_s: float | None = None if stalled is None else float(stalled)
        self.reliable = config.profile == "reliable"
        self.conn = psycopg.connect(config.broker_url, autocommit=True)
        apply_schema(self.conn)
        self._loop = PrivateLoop()
        self.app = build_app(config.broker_url, config.queue, False, None)
        self._loop.run(self.app.open_async(), TIMEOUT_S)
        self.task = self.app.tasks[TASK_NAME]
        env = worker_environment(config.broker_url, config.queue, config.profile,
                                 self.stalled_s)
        self.workers = WorkerGroup("procrastinate", config.log_dir,
                                   worker_env(config.records_dir, env))

    def required_settings(self) -> RequiredSettings:
        return {
            "processes": self.processes, "concurrency_per_process": self.concurrency,
            "pool": "asyncio coroutines in the procrastinate worker processes (--concurrency)",
            # A worker fetches one job per free slot; nothing is held ahead.
            "prefetch": self.processes * self.concurrency,
            "acks": "the job row goes from todo to doing when fetched and to succeeded or "
                    "failed after it; a dead worker's doing jobs stay there"
                    + ("; the stalled-job retry task re-queues them" if self.reliable else ""),
            "results": results_unsupported(
                self.config.results, "procrastinate stores no return value (a finished job's "
                "row keeps its status only)"),
            "enqueue": "Task.defer_async per job; Task.batch_defer_async per batch",
        }

    def extra_settings(self) -> dict[str, Any]:
        timing = stalled_settings(self.stalled_s)
        return {
            "library": f"procrastinate {procrastinate.__version__}",
            "worker": "procrastinate --app=adapters.procrastinate.app.app worker "
                      f"--queues={self.config.queue} --concurrency={self.concurrency}",
            "connector": f"PsycopgConnector (psycopg {psycopg.__version__})",
            "listen_notify": True, "fetch_job_polling_interval_s": 5.0,
            "delete_jobs": "never (finished rows stay until the purge)",
            "statistics": STATISTICS_AFTER_FILL,
            "retry": "none (the task default)",
            "update_heartbeat_interval_s": timing["update_heartbeat_interval_s"],
            "stalled_worker_timeout_s": timing["stalled_worker_timeout_s"],
            "stalled_from": ("options.stalled_timeout_s" if self.stalled_s is not None
                             else "procrastinate default"),
            "retry_stalled_jobs": (f"periodic task, cron {timing['retry_stalled_cron']!r}"
                                   if self.reliable else "none"),
            "worker_log": "INFO, lines per job (procrastinate CLI default)",
            "delivery": "at most once by default: a job whose worker died stays in doing; "
                        "with the stalled-job retry (reliable) it runs again (at least once)",
            "profile_changes": ("the docs' retry_stalled_jobs periodic task" if self.reliable
                                else "none"),
            "second_queue": (f"the probe deferred with priority={SECOND_PRIORITY} (the backlog: "
                             "0) on the same queue" if self.serves_second_queue else "none"),
        }

    def purge(self) -> None:
        self.conn.execute(f"TRUNCATE {PROCRASTINATE_TABLES} CASCADE")

    def backlog_filled(self) -> None:
        self.conn.execute(f"ANALYZE {PROCRASTINATE_TABLES}")

    def start_workers(self) -> None:
        cmd = [console_script("procrastinate"), "--app=adapters.procrastinate.app.app",
               "worker", f"--queues={self.config.queue}", f"--concurrency={self.concurrency}"]
        self.workers.start(cmd, self.processes, ready="Starting worker on")

    def _kwargs(self, job: JobCall) -> dict[str, Any]:
        return {"job_id": job.job_id, "sent_ns": job.sent_ns, "spec": job.spec,
                "payload": job.payload}

    def enqueue(self, job: JobCall) -> None:
        self._loop.run(self.task.defer_async(**self._kwargs(job)))

    def enqueue_second(self, job: JobCall) -> None:
        deferrer = self.task.configure(priority=SECOND_PRIORITY)
        self._loop.run(deferrer.defer_async(**self._kwargs(job)))

    def enqueue_batch(self, jobs: Sequence[JobCall]) -> None:
        self._loop.run(self.task.batch_defer_async(*(self._kwargs(job) for job in jobs)))

    def close(self) -> None:
        try:
            self.conn.close()
            self._loop.run(self.app.close_async(), TIMEOUT_S)
        finally:
            self._loop.close()
