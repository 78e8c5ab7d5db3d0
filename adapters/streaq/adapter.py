"""streaq on Redis streams: asyncio jobs run by streaq's own worker CLI.

P x `streaq run adapters.streaq.app:worker --workers 1`, each with
concurrency = slots / P (P from adapters.slots). Not one CLI with
`--workers P`: as saq's, that CLI is itself a worker and forks P - 1 more
that it neither supervises nor stops, so a killed CLI left orphans running
next to its replacement (more slots than the cell's).

Both profiles run streaq's defaults: a consumer group reads the stream,
the message is acknowledged (XACK, XDEL) when the task ends, a worker keeps
re-claiming the messages of its running tasks, and a message idle longer
than idle_timeout (60 s) is claimed by another worker; a task is tried up
to max_tries=3 times. That already is streaq's at-least-once mode, so
`reliable` changes nothing. Results off: ttl=0 (streaq's default keeps a
result 5 min).

The producer is a Worker too (streaq enqueues through one), held open
(`async with worker`) by a task on a private event loop that each enqueue
runs, as arq's producer does (handing each call to a loop in another thread
added milliseconds to an idle send); Worker.enqueue_many, one Redis
pipeline, is the bulk API.

Second queue (depth cells): streaq's priority queues, `Worker(priorities=["normal",
"high"])` on both sides and `task.enqueue(...).start(priority="high")` for the probe.
Each priority is a stream of its own; a worker reads them highest first whenever its
prefetch has room, into one buffer its slots take from in arrival order, so the probe
waits behind what each worker has already prefetched, not behind the backlog.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis
from streaq import VERSION

from adapters.base import AdapterConfig, JobCall, RequiredSettings
from adapters.event_loop import PrivateLoop
from adapters.redis_keys import glob_escape, purge_keys
from adapters.slots import slot_map
from adapters.streaq.app import HIGH, TASK_NAME, WorkerSettings, build
from adapters.workers import (
    READY_LINE,
    WorkerGroup,
    WorkerProcessAdapter,
    console_script,
    worker_env,
)

TIMEOUT_S = 30.0
IDLE_TIMEOUT_S = 60  # streaq Worker default
MAX_TRIES = 3  # streaq task default


class StreaqAdapter(WorkerProcessAdapter):
    async_jobs = True
    bulk_api = True  # Worker.enqueue_many: a batch in one Redis pipeline
    second_queue = (f"streaq: priority {HIGH!r} (priorities normal, high), a stream read "
                    "first; behind the prefetched jobs only")

    def __init__(self, config: AdapterConfig) -> None:
        super().__init__(config)
        if not config.broker_url:
            raise ValueError("streaq needs a Redis broker URL")
        self.processes, self.concurrency = slot_map(config.slots, config.cpu_count)
        idle = config.options.get("idle_timeout_s")
        self.app = WorkerSettings(config.broker_url, config.queue, self.concurrency,
                                  config.results, None if idle is None else float(idle),
                                  high_priority=self.serves_second_queue)
        self.producer = build(self.app)
        self.task = self.producer.registry[TASK_NAME]
        self._loop = PrivateLoop()
        self._opened = asyncio.Event()
        self._closing = asyncio.Event()
        self._session = self._loop.loop.create_task(self._hold_open())
        self._loop.run(self._wait_open(), TIMEOUT_S)
        self._client = redis.Redis.from_url(config.broker_url, socket_timeout=TIMEOUT_S)
        env = worker_env(config.records_dir, self.app.to_env())
        self.workers = WorkerGroup("streaq", config.log_dir, env)

    async def _hold_open(self) -> None:
        """Keep the producer's Worker open (its Redis connection) until close()."""
        async with self.producer:
            self._opened.set()
            await self._closing.wait()

    async def _wait_open(self) -> None:
        """Until the Worker is open, or what kept it from opening is raised."""
        opened = asyncio.ensure_future(self._opened.wait())
        await asyncio.wait([opened, self._session], return_when=asyncio.FIRST_COMPLETED)
        if self._session.done():
            opened.cancel()
            self._session.result()

    def required_settings(self) -> RequiredSettings:
        return {
            "processes": self.processes, "concurrency_per_process": self.concurrency,
            "pool": "asyncio tasks in the streaq worker processes (concurrency each)",
            # streaq's prefetch: (prefetch or concurrency) + concurrency per process
            "prefetch": self.processes * self.producer.prefetch,
            "acks": "XACK + XDEL when the task ends; a message idle longer than "
                    "idle_timeout (its worker died) is claimed by another worker",
            "results": self.config.results,
            "enqueue": "awaiting task.enqueue() per job; Worker.enqueue_many (one pipeline) "
                       "per batch",
        }

    def extra_settings(self) -> dict[str, Any]:
        return {
            "library": f"streaq {VERSION}",
            "worker_command": f"{self.processes} x streaq run adapters.streaq.app:worker "
                              f"--workers 1",
            "idle_timeout_s": self.app.idle_timeout_s or IDLE_TIMEOUT_S,
            "idle_timeout_from": ("options.idle_timeout_s" if self.app.idle_timeout_s
                                  else "streaq default"),
            "max_tries": MAX_TRIES,
            "result_ttl_s": "default (300)" if self.config.results else 0,
            "serializer": "pickle (streaq default)",
            "worker_log": "INFO, two lines per task (streaq CLI default)",
            "delivery": "at least once: a task whose worker died runs again once its message "
                        f"is idle longer than idle_timeout, up to {MAX_TRIES} tries",
            "profile_changes": "none: streaq's defaults already are its at-least-once mode",
            "priorities": self.producer.priorities[::-1],  # streaq keeps them highest first
        }

    # -- queue and workers ---------------------------------------------------
    def _streams(self) -> list[str]:
        return [self.producer.stream_key + priority for priority in self.producer.priorities]

    def purge(self) -> None:
        """Trim the streams (their consumer group, which the running workers read, must
        survive) and delete every other key of the queue."""
        streams = self._streams()
        for stream in streams:
            self._client.xtrim(stream, maxlen=0, approximate=False)
        pattern = f"{glob_escape(self.producer.prefix)}:*"
        others = [key for key in self._client.scan_iter(match=pattern, count=1000)
                  if key.decode() not in streams]
        purge_keys(self._client, others, [])

    def remove_queue(self) -> None:
        self._client.delete(*self._streams())

    def start_workers(self) -> None:
        cmd = [console_script("streaq"), "run", "adapters.streaq.app:worker", "--workers", "1"]
        self.workers.start(cmd, self.processes, ready=READY_LINE)  # from streaq's lifespan hook

    def _call(self, job: JobCall) -> Any:
        return self.task.enqueue(job.job_id, job.sent_ns, job.spec, job.payload)

    def enqueue(self, job: JobCall) -> None:
        self._send(self._call(job))

    def enqueue_second(self, job: JobCall) -> None:
        self._send(self._call(job).start(priority=HIGH))

    def _send(self, task: Any) -> None:
        async def send() -> None:
            await task

        self._loop.run(send())

    def enqueue_batch(self, jobs: Sequence[JobCall]) -> None:
        self._loop.run(self.producer.enqueue_many([self._call(job) for job in jobs]))

    def close(self) -> None:
        try:
            self._client.close()
            self._closing.set()
            self._loop.run(self._session, TIMEOUT_S)
        finally:
            self._loop.close()
