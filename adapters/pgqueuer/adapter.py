"""pgqueuer: asyncio jobs in PostgreSQL rows (asyncpg), run by its own `pgq run` CLI.

Slots map to P `pgq run` processes (adapters/slots.py); the entrypoint's
concurrency_limit (slots, enforced in SQL across workers) caps the jobs
picked at once, in all processes together. Each dequeues up to `--batch-size`
jobs at once, pgqueuer's 10 in the default profile: a finished job stays picked
until its worker's status buffer flushes, on batch_size entries or every 0.1 s,
so with 8 slots and batches of 10 the buffer never fills and about 8 jobs
run per 0.1 s flush whatever the job, as for any user whose concurrency_limit
is below the batch size. The tuned profile dequeues slots / P jobs at once. A picked
job whose heartbeat is older than heartbeat_timeout (30 s) is picked again
by another worker. The producer keeps one private event loop and asyncpg
connection: `Queries.enqueue` per job, and its list form per batch (one
statement). The schema is installed once per database, as `pgq install`.

Second queue (depth cells): a job priority, the enqueue argument pgqueuer gives for
urgent work. A worker's dequeue takes its entrypoints' `queued` rows by priority
(highest first), then id, so the probe is enqueued on the same entrypoint with
priority SECOND_PRIORITY (the backlog has 0) and the next dequeue with a free slot
takes it, ahead of the backlog. (A second entrypoint would not do: its jobs are
merged into the same priority-then-id order, behind the older backlog.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import pgqueuer
from pgqueuer import AsyncpgDriver, Queries

from adapters.base import (
    SECOND_PRIORITY,
    STATISTICS_AFTER_FILL,
    AdapterConfig,
    JobCall,
    RequiredSettings,
    Tuning,
    results_unsupported,
)
from adapters.event_loop import PrivateLoop
from adapters.pgqueuer.worker import READY_LINE, on_failure, worker_environment
from adapters.raw_message import encode
from adapters.slots import slot_map
from adapters.workers import WorkerGroup, WorkerProcessAdapter, python_module, worker_env

TIMEOUT_S = 30.0
BATCH_SIZE, HEARTBEAT_TIMEOUT_S = 10, 30.0  # `pgq run` defaults
BATCH_DOCS = ("pgqueuer's CLI reference, `pgq run --batch-size`: 'Number of jobs to pull from "
              "the queue at once' (https://janbjorge.github.io/pgqueuer/); a finished job "
              "counts against the concurrency_limit until the status buffer, batch_size "
              "entries long, flushes (else every 0.1 s), so a batch no larger than the "
              "process's share of the limit (the docs give no value)")
TABLES = "pgqueuer, pgqueuer_log, pgqueuer_statistics"


class PgqueuerAdapter(WorkerProcessAdapter):
    bulk_api = True  # Queries.enqueue with lists: one statement per batch
    async_jobs = True
    second_queue = (f"pgqueuer: priority {SECOND_PRIORITY} on the same entrypoint; a dequeue "
                    "takes jobs by priority, then id")

    def __init__(self, config: AdapterConfig) -> None:
        super().__init__(config)
        if not config.broker_url:
            raise ValueError("pgqueuer needs a PostgreSQL broker URL")
        self.processes, self.per_process = slot_map(config.slots, config.cpu_count)
        self.batch_size = min(BATCH_SIZE, self.per_process) if self.tuned else BATCH_SIZE
        timeout = config.options.get("heartbeat_timeout_s")
        self.heartbeat_s = HEARTBEAT_TIMEOUT_S if timeout is None else float(timeout)
        self._loop = PrivateLoop()
        self._conn = self._loop.run(asyncpg.connect(config.broker_url), TIMEOUT_S)
        self.queries = Queries(AsyncpgDriver(self._conn))
        self._loop.run(self._install(), TIMEOUT_S)
        env = worker_environment(config.broker_url, config.queue, config.slots, config.profile)
        self.workers = WorkerGroup("pgqueuer", config.log_dir,
                                   worker_env(config.records_dir, env))

    async def _install(self) -> None:
        """pgqueuer's schema, once per database (producers may race to it)."""
        async with self._conn.transaction():
            await self._conn.execute("SELECT pg_advisory_xact_lock(hashtext('queuebench "
                                     "pgqueuer'))")
            if not await self.queries.schema_is_installed():
                await self.queries.install()

    def tunings(self) -> dict[str, Tuning]:
        tuned = min(BATCH_SIZE, self.per_process)  # with 10+ slots a process: the default
        return {"batch_size": Tuning(tuned, BATCH_DOCS)} if tuned < BATCH_SIZE else {}

    def required_settings(self) -> RequiredSettings:
        return {
            # the limit is the entrypoint's, across processes: any one may run all slots
            "processes": self.processes, "concurrency_per_process": self.config.slots,
            "pool": "asyncio tasks in the pgq run processes (entrypoint concurrency_limit "
                    f"{self.config.slots} across them, not per process)",
            "prefetch": self.config.slots,
            "acks": "the row is picked on dequeue and deleted (logged) after the job; a "
                    "picked job whose heartbeat is older than heartbeat_timeout is picked "
                    "again",
            "results": results_unsupported(
                self.config.results, "pgqueuer stores no return value (a finished job's row "
                "goes to its log table with its status)"),
            "enqueue": "Queries.enqueue per job; Queries.enqueue with lists per batch",
        }

    def extra_settings(self) -> dict[str, Any]:
        return {
            "library": f"pgqueuer {pgqueuer.__version__}",
            "driver": f"asyncpg {asyncpg.__version__}",
            "worker": "pgqueuer.run('adapters.pgqueuer.worker:create_manager', "
                      f"heartbeat_timeout={self.heartbeat_s:g} s), as pgq run does",
            "batch_size": self.batch_size,
            "batch_size_from": ("tuned profile: slots per process" if self.tuned
                                else "pgqueuer default"),
            "dequeue_timeout_s": 30.0,
            "statistics": STATISTICS_AFTER_FILL,
            "heartbeat_timeout_s": self.heartbeat_s,
            "heartbeat_from": ("options.heartbeat_timeout_s" if self.heartbeat_s
                               != HEARTBEAT_TIMEOUT_S else "pgqueuer default"),
            "on_failure": on_failure(self.config.profile),
            "worker_log": "INFO (pgq run default)",
            "delivery": "at least once: a dead worker's picked jobs are picked again once "
                        "their heartbeat is older than heartbeat_timeout",
            "profile_changes": ("on_failure='hold': a failed job is kept for re-queueing"
                                if self.config.profile == "reliable" else "none"),
            "second_queue": (f"the probe enqueued with priority={SECOND_PRIORITY} (the backlog: "
                             "0) on the same entrypoint" if self.serves_second_queue
                             else "none"),
        }

    def purge(self) -> None:
        self._loop.run(self._conn.execute(f"TRUNCATE {TABLES}"), TIMEOUT_S)

    def backlog_filled(self) -> None:
        self._loop.run(self._conn.execute(f"ANALYZE {TABLES}"), TIMEOUT_S)

    def start_workers(self) -> None:
        cmd = python_module("adapters.pgqueuer.worker", "--heartbeat-timeout",
                            f"{self.heartbeat_s:g}", "--batch-size", str(self.batch_size))
        self.workers.start(cmd, self.processes, ready=READY_LINE)

    def enqueue(self, job: JobCall) -> None:
        self._enqueue_one(job, 0)

    def enqueue_second(self, job: JobCall) -> None:
        self._enqueue_one(job, SECOND_PRIORITY)

    def _enqueue_one(self, job: JobCall, priority: int) -> None:
        self._loop.run(self.queries.enqueue(
            self.config.queue, encode(job),
            priority))

    def enqueue_batch(self, jobs: Sequence[JobCall]) -> None:
        self._loop.run(self.queries.enqueue(
            [self.config.queue] * len(jobs),
            [encode(job) for job in jobs],
            [0] * len(jobs)))

    def close(self) -> None:
        try:
            self._loop.run(self._conn.close(), TIMEOUT_S)
        finally:
            self._loop.close()
