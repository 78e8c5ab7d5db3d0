"""RQ (Redis Queue): sync jobs run by `rq worker` processes.

Slots map to `slots` worker processes, each running one job at a time.
The default Worker forks a work horse per job (what users get); the
option rq_worker_class=SimpleWorker runs jobs in the worker process itself,
so the fork-per-job cost can be measured apart.

Profiles: `default` enqueues with RQ's defaults (no retry: a failed or
abandoned job ends in the FailedJobRegistry). `reliable` adds Retry(max=3),
which RQ's docs give as the way to retry failed jobs; in RQ 2.x and 3.0 that
also re-queues a job whose work horse was killed (the worker's failure path)
and one abandoned by a killed worker (StartedJobRegistry cleanup, which in
3.0 touches only jobs still marked started), instead of leaving it failed (a
job that raises is retried too). `tuned` runs
SimpleWorker, which RQ's performance notes advise for jobs of a few
milliseconds (an explicit rq_worker_class option still wins). Results are off
by result_ttl=0.

Second queue (depth cells): `rq worker <second> <queue>`, RQ's documented way
to give queues priorities (`rq worker high default low`): a worker always
takes from the first queue in that order that has a job, so a job on the
second queue goes ahead of the whole backlog.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import redis
import rq.defaults
from rq import Queue, Retry
from rq.defaults import (
    DEFAULT_FAILURE_TTL,
    DEFAULT_MAINTENANCE_TASK_INTERVAL,
    DEFAULT_RESULT_TTL,
)
from rq.version import VERSION

from adapters.base import AdapterConfig, JobCall, RequiredSettings, Tuning
from adapters.job import bench_job
from adapters.redis_keys import glob_escape, purge_keys
from adapters.workers import WorkerGroup, WorkerProcessAdapter, python_module, worker_env

WORKER_CLASSES = {"Worker": "rq.Worker", "SimpleWorker": "rq.SimpleWorker"}
# RQ 3.0 names every key with RQ_KEY_PREFIX (environment, default "rq"), read once at
# import; before 3.0 the prefix was always "rq" (an rq@2.x variant runs this adapter too).
KEY_PREFIX: str = getattr(rq.defaults, "RQ_KEY_PREFIX", "rq")
RELIABLE_RETRIES = 3
PERFORMANCE_NOTES = ("RQ docs, Notes on Performance: SimpleWorker skips fork() and is "
                     "about 6x faster for jobs of single-digit milliseconds "
                     "(https://github.com/rq/rq/blob/master/docs/benchmark.md)")


class RqAdapter(WorkerProcessAdapter):
    bulk_api = True  # Queue.enqueue_many: every job of a batch in one Redis pipeline
    second_queue = ("rq: queue order second,default (rq worker lists the second queue first; "
                    "a worker takes from the first queue in its list that has a job)")

    def __init__(self, config: AdapterConfig) -> None:
        super().__init__(config)
        if not config.broker_url:
            raise ValueError("rq needs a Redis broker URL")
        self.worker_class = str(config.options.get(
            "rq_worker_class", "SimpleWorker" if self.tuned else "Worker"))
        if self.worker_class not in WORKER_CLASSES:
            raise ValueError(f"rq_worker_class {self.worker_class!r}; valid: "
                             f"{', '.join(WORKER_CLASSES)}")
        self.client = redis.Redis.from_url(config.broker_url, socket_timeout=30)
        self.queue = Queue(config.queue, connection=self.client)
        self.second = Queue(self.second_queue_name, connection=self.client)
        # RQ job ids allow [A-Za-z0-9_-] only; ids start with the queue so purge finds them.
        self._id_prefix = re.sub(r"[^A-Za-z0-9_]", "_", config.queue) + "-"
        self._options: dict[str, Any] = {}
        if not config.results:
            self._options["result_ttl"] = 0
        if config.profile == "reliable":
            self._options["retry"] = Retry(max=RELIABLE_RETRIES)
        # The URL goes in rq's own RQ_REDIS_URL variable: a password stays out of `ps`.
        env = worker_env(config.records_dir, {"RQ_REDIS_URL": config.broker_url})
        self.workers = WorkerGroup("rq", config.log_dir, env)

    def tunings(self) -> dict[str, Tuning]:
        return {"worker_class": Tuning("SimpleWorker", PERFORMANCE_NOTES)}

    def required_settings(self) -> RequiredSettings:
        fork = self.worker_class == "Worker"
        return {
            "processes": self.config.slots, "concurrency_per_process": 1,
            "pool": "a work horse forked per job by each worker" if fork
            else "in the worker process itself (SimpleWorker)",
            "prefetch": self.config.slots,
            "acks": "none: a worker takes the job off the queue; StartedJobRegistry tracks it "
                    "while it runs",
            "results": self.config.results,
            "enqueue": "Queue.enqueue per job; Queue.enqueue_many (one pipeline) per batch",
        }

    def extra_settings(self) -> dict[str, Any]:
        reliable = self.config.profile == "reliable"
        fork = self.worker_class == "Worker"
        result_ttl = self._options.get("result_ttl", DEFAULT_RESULT_TTL)
        return {
            "library": f"rq {VERSION}",
            "worker": (f"rq worker CLI (via adapters.rq.worker), --worker-class "
                       f"{WORKER_CLASSES[self.worker_class]}"),
            "worker_class": self.worker_class,
            "fork_per_job": fork,
            "job_module_imported": ("once per worker process, before it forks its work "
                                    "horses (RQ docs, Performance Notes)"),
            "job_timeout_s": Queue.DEFAULT_TIMEOUT,
            "retry": (f"Retry(max={RELIABLE_RETRIES}, interval=0): a job that raised, lost its "
                      "work horse or was abandoned is re-queued at once, up to "
                      f"{RELIABLE_RETRIES} times" if reliable else "none (RQ default)"),
            "killed_job": self._killed_job(reliable, fork),
            "result_ttl_s": result_ttl,
            "failure_ttl_s": DEFAULT_FAILURE_TTL,
            "stored_in_redis": (
                "a job hash per job (always), deleted when the job succeeds; a failed job "
                f"keeps its hash and a result entry for {DEFAULT_FAILURE_TTL} s"
                if result_ttl == 0 else
                f"a job hash and a result entry per job for {result_ttl} s after success"),
            "job_id": "'<queue>-<n>' set by the adapter (RQ default: uuid4)",
            "key_prefix": (f"{KEY_PREFIX} (RQ default)" if KEY_PREFIX == "rq"
                           else f"{KEY_PREFIX} (RQ_KEY_PREFIX)"),
            "serializer": "pickle, job data zlib-compressed in Redis (RQ defaults)",
            "worker_log": "INFO, lines per job (RQ default)",
            "delivery": (f"at least once while retries are left: a killed job is re-run (up to "
                         f"{RELIABLE_RETRIES} times), so a job may run more than once"
                         if reliable else
                         "at most once: a failed or killed job is not re-run"),
        }

    @staticmethod
    def _killed_job(reliable: bool, fork: bool) -> str:
        """What RQ does with the job of a SIGKILLed process: read from RQ 2.12 and 3.0 (the
        same code paths in both), measured on 2.12 and, for a work-horse kill (default and
        reliable), on 3.0 again."""
        outcome = ("re-queued while retries are left" if reliable
                   else "FailedJobRegistry, not re-run")
        if fork:
            return (f"work horse killed: its worker notices at once -> {outcome} "
                    "(Work-horse terminated unexpectedly)")
        expiry = Queue.DEFAULT_TIMEOUT + 60
        return (f"worker killed: the job stays in StartedJobRegistry until its entry expires "
                f"(job_timeout + 60 = {expiry} s) and a live worker's maintenance runs (every "
                f"{DEFAULT_MAINTENANCE_TASK_INTERVAL} s) -> {outcome} (AbandonedJobError)")

    def purge(self) -> None:
        # RQ has no call that removes every key of one queue (Queue.delete drops only
        # queued jobs), but every key of this cell is named after its queue.
        # The second queue's keys too (its jobs' ids carry the same prefix).
        names = self.queue_names()
        prefix = Queue.redis_queue_namespace_prefix
        self.client.srem(Queue.redis_queues_keys, *(prefix + name for name in names))
        head = glob_escape(KEY_PREFIX)
        patterns = [f"{head}:*:{glob_escape(name)}{tail}" for name in names for tail in ("", ":*")]
        purge_keys(self.client, [], [*patterns, f"{head}:*:{glob_escape(self._id_prefix)}*"])

    def start_workers(self) -> None:
        # RQ serves queues in the order given: the second queue first (its priority)
        cmd = python_module("adapters.rq.worker", "worker", "--worker-class",
                            WORKER_CLASSES[self.worker_class], *reversed(self.queue_names()))
        self.workers.start(cmd, self.config.slots, ready=r"\*\*\* Listening on")

    def _args(self, job: JobCall) -> tuple[int, int, dict[str, Any], str]:
        return job.job_id, job.sent_ns, job.spec, job.payload

    def enqueue(self, job: JobCall) -> None:
        self._enqueue_on(self.queue, job)

    def enqueue_second(self, job: JobCall) -> None:
        self._enqueue_on(self.second, job)

    def _enqueue_on(self, queue: Queue, job: JobCall) -> None:
        queue.enqueue(bench_job, *self._args(job), job_id=self._id_prefix + str(job.job_id),
                      **self._options)

    def enqueue_batch(self, jobs: Sequence[JobCall]) -> None:
        self.queue.enqueue_many([
            Queue.prepare_data(bench_job, args=self._args(job),
                               job_id=self._id_prefix + str(job.job_id), **self._options)
            for job in jobs
        ])

    def close(self) -> None:
        self.client.close()
