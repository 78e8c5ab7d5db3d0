"""arq: asyncio jobs on Redis, run by arq's own worker CLI.

Slots map to P worker processes (the largest divisor of `slots` that is at
most the CPU count) of max_jobs = slots // P concurrent asyncio jobs each,
so P * max_jobs == slots and no process runs more jobs than the others.

Both profiles run arq's defaults (poll_delay 0.5 s, job_timeout 300 s,
max_tries 5): arq is at-least-once by design ("pessimistic execution": a
job stays in the queue until it succeeded or failed), so its docs leave
nothing to switch on against lost jobs. Results are off by keep_result=0.

Why arq looks slow with jobs of 1 ms or more: a worker reads the queue once
per poll_delay and starts at most max_jobs jobs per read, so it does about
slots / poll_delay jobs/s (16/s for 8 slots) whatever the job length. The
option arq_poll_delay_s measures a shorter poll. The `tuned` profile polls
every 10 ms and reads only max_jobs ids per poll (see tunings()).

The producer keeps one private event loop for its ArqRedis pool, so each
enqueue is one enqueue_job call on the same connection pool, not a new loop.
Purging goes through a plain redis-py client, as for the other Redis backends.
"""

from __future__ import annotations

import inspect
from collections.abc import Coroutine, Sequence
from typing import Any

import redis
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import health_check_key_suffix
from arq.jobs import Job
from arq.version import VERSION
from arq.worker import Worker

from adapters.arq.worker import FUNCTION_NAME, worker_environment
from adapters.base import AdapterConfig, JobCall, RequiredSettings, Tuning
from adapters.event_loop import PrivateLoop, send_keyed
from adapters.redis_keys import glob_escape, purge_keys
from adapters.slots import slot_map
from adapters.workers import WorkerGroup, WorkerProcessAdapter, console_script, worker_env

REDIS_TIMEOUT_S = 30.0
WORKER_DOCS = "arq docs, Worker parameters (https://arq-docs.helpmanual.io/#arq.worker.Worker)"
TUNED_POLL_DELAY_S = 0.01
ARQ_DEFAULTS: dict[str, Any] = {
    name: param.default for name, param in inspect.signature(Worker).parameters.items()
}


class ArqAdapter(WorkerProcessAdapter):
    # arq has no bulk enqueue API: enqueue_batch stays the base class's loop of
    # enqueue_job calls. Gathering them concurrently would be pipelining, not a
    # bulk API, and the driver uses one call per job when bulk_api is False anyway.
    bulk_api = False
    async_jobs = True

    def __init__(self, config: AdapterConfig) -> None:
        super().__init__(config)
        if not config.broker_url:
            raise ValueError("arq needs a Redis broker URL")
        self.processes, self.max_jobs = slot_map(config.slots, config.cpu_count)
        override = config.options.get("arq_poll_delay_s")
        if override is None and self.tuned:
            override = TUNED_POLL_DELAY_S
        self.poll_delay_s: float | None = None if override is None else float(override)
        self.queue_read_limit: int | None = self.max_jobs if self.tuned else None
        self.keep_result_s: float | None = None if config.results else 0.0
        # crash scenario: a shorter job_timeout, so the in-progress key of a killed
        # worker's job (job_timeout + 10 s, fixed by arq) expires inside the window
        timeout = config.options.get("job_timeout_s")
        self.job_timeout_s: float | None = None if timeout is None else float(timeout)
        self._loop = PrivateLoop()
        self._redis: ArqRedis = self._loop.run(create_pool(
            RedisSettings.from_dsn(config.broker_url), default_queue_name=config.queue),
            REDIS_TIMEOUT_S)
        self._client = redis.Redis.from_url(config.broker_url, socket_timeout=REDIS_TIMEOUT_S)
        env = worker_environment(config.broker_url, config.queue, self.max_jobs,
                                 self.poll_delay_s, self.keep_result_s, self.queue_read_limit,
                                 self.job_timeout_s)
        self.workers = WorkerGroup("arq", config.log_dir, worker_env(config.records_dir, env))

    def _job_key(self, job_id: int) -> str:
        # Named after the queue so purge() finds every key of this cell, results included.
        return f"{self.config.queue}:{job_id}"

    def tunings(self) -> dict[str, Tuning]:
        return {
            "poll_delay_s": Tuning(TUNED_POLL_DELAY_S, f"{WORKER_DOCS}: 'duration between "
                                   "polling the queue for new jobs'; a busy worker starts "
                                   "jobs only at a poll, so one poll per 10 ms job (the docs "
                                   "give no value)"),
            "queue_read_limit": Tuning(self.max_jobs, f"{WORKER_DOCS}: 'the maximum number of "
                                       "jobs to pull from the queue each time it's polled'; "
                                       "max_jobs, so processes do not read the same ids "
                                       "(arq issue #141 that added it)"),
        }

    def required_settings(self) -> RequiredSettings:
        return {
            "processes": self.processes, "concurrency_per_process": self.max_jobs,
            "pool": "asyncio tasks in the arq worker processes (max_jobs each)",
            # A worker claims a job (its in-progress key) only once a slot is free.
            "prefetch": self.processes * self.max_jobs,
            "acks": "the job is deleted after it ends (pessimistic execution); a job whose "
                    "worker died runs again once its in-progress key expires",
            "results": self.config.results,
            "enqueue": "ArqRedis.enqueue_job, one call per job (arq has no bulk API)",
        }

    def extra_settings(self) -> dict[str, Any]:
        keep = ARQ_DEFAULTS["keep_result"] if self.keep_result_s is None else self.keep_result_s
        poll = ARQ_DEFAULTS["poll_delay"] if self.poll_delay_s is None else self.poll_delay_s
        return {
            "library": f"arq {VERSION}",
            "worker": "arq CLI: arq adapters.arq.worker.WorkerSettings",
            "poll_delay_s": poll,
            "poll_delay_from": self._poll_delay_from(),
            "queue_read_limit": self.queue_read_limit or max(self.max_jobs * 5, 100),
            "job_timeout_s": self.job_timeout_s or ARQ_DEFAULTS["job_timeout"],
            "in_progress_key_s": (self.job_timeout_s or ARQ_DEFAULTS["job_timeout"]) + 10,
            "max_tries": ARQ_DEFAULTS["max_tries"],
            "retry_jobs": ARQ_DEFAULTS["retry_jobs"],
            "retried": "jobs cancelled by a worker shutdown or raising arq.Retry; "
                       "a plain exception is not retried",
            "keep_result_s": keep,
            "stored_in_redis": ("job, in-progress and try-count keys while a job is queued or "
                                "running; nothing per job after it ends" if keep == 0 else
                                f"the above plus a result key per job for {keep:g} s"),
            "job_id": "'<queue>:<n>' set by the adapter (arq default: uuid4 hex)",
            "serializer": "pickle (arq default)",
            "worker_log": "INFO, a line per job start and end (arq CLI default)",
            "delivery": "at least once (pessimistic execution); a SIGKILLed worker's jobs "
                        "run again once their in-progress key expires (job_timeout + 10 s)",
            "profile_changes": "none: arq's defaults already are its at-least-once mode",
        }

    def _poll_delay_from(self) -> str:
        if self.config.options.get("arq_poll_delay_s") is not None:
            return "options.arq_poll_delay_s"
        return "tuned profile" if self.tuned else "arq default"

    def purge(self) -> None:
        queue = self.config.queue
        purge_keys(self._client, [queue, queue + health_check_key_suffix],
                   [f"arq:*:{glob_escape(queue)}:*"])

    def start_workers(self) -> None:
        cmd = [console_script("arq"), "adapters.arq.worker.WorkerSettings"]
        self.workers.start(cmd, self.processes, ready=r"Starting worker for \d+ functions")

    def _send(self, job: JobCall) -> Coroutine[Any, Any, Job | None]:
        return self._redis.enqueue_job(FUNCTION_NAME, job.job_id, job.sent_ns, job.spec,
                                       job.payload, _job_id=self._job_key(job.job_id))

    def enqueue(self, job: JobCall) -> None:
        # No wait_for here: it would add a task per job to the measured enqueue cost.
        send_keyed(self._loop, self._send, [job], "arq")

    def fill(self, jobs: Sequence[JobCall]) -> None:
        send_keyed(self._loop, self._send, jobs, "arq")

    def close(self) -> None:
        try:
            self._client.close()
            self._loop.run(self._redis.aclose(), REDIS_TIMEOUT_S)
        finally:
            self._loop.close()
