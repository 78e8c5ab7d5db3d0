"""dramatiq-redis and dramatiq-rabbitmq: Dramatiq with either broker.

Workers are started as users start them, with the `dramatiq` CLI:
`dramatiq adapters.dramatiq.app:setup_worker --processes P --threads T
--queues <queue>`. The CLI forks P worker processes of T threads each
under one parent; `slots` = P * T, with P the largest divisor of `slots`
that does not exceed the CPU count (processes bring parallelism, threads
fill the rest, as Dramatiq's own defaults do: CPU-count processes,
8 threads each).

Profiles. `default` is what `RedisBroker(url=...)` / `RabbitmqBroker(url=...)`
give a new user: default middleware and prefetch (2 x threads per process),
late acks, Redis heartbeat_timeout 60 s, no publisher confirms. `reliable`
adds what Dramatiq documents against lost messages: publisher confirms
(confirm_delivery=True) on RabbitMQ. On Redis there is nothing to add:
messages are already acked only after the job, and a dead worker's
messages are re-queued once its heartbeat is older than heartbeat_timeout.
Both profiles set max_retries=0 on the actor (see adapters.dramatiq.app).

Second queue (depth cells): Dramatiq's queue belongs to the actor, so a
second actor runs the same job on a second queue, and the CLI is given both
(`--queues <queue> <second>`). Each worker process runs one consumer per queue,
each with its own prefetch, into one work queue its threads take from in
arrival order (actor priority equal): a job on the second queue waits behind
what the process has already prefetched, not behind the backlog.
"""

from __future__ import annotations

import os
from typing import Any

import dramatiq

from adapters.base import AdapterConfig, JobCall, RequiredSettings
from adapters.dramatiq.app import AppSettings, build
from adapters.slots import slot_map
from adapters.workers import WorkerGroup, WorkerProcessAdapter, console_script, worker_env

READY_LINE = "Worker process is ready for action"
DEFAULT_HEARTBEAT_MS = 60000  # dramatiq.brokers.redis.DEFAULT_HEARTBEAT_TIMEOUT
DEFAULT_MAINTENANCE_CHANCE = 1000  # per million broker commands
GRACEFUL_STOP_S = 6.0


class DramatiqAdapter(WorkerProcessAdapter):
    """One adapter for both brokers; the broker URL scheme picks the broker."""

    # A forked worker process runs the jobs. Killing one makes Dramatiq's main
    # process stop the others and exit ("exited unexpectedly. Shutting
    # down..."), so a supervisor (the crash phase) brings the CLI back.
    # SIGTERM to the CLI's main process only: it relays one SIGTERM to each
    # worker process, which finishes running jobs and returns prefetched ones
    # (a second SIGTERM straight to a worker process makes it exit at once).
    stop_grace_s = GRACEFUL_STOP_S
    # No bulk API: Dramatiq's group()/pipeline() still call broker.enqueue
    # once per message, so enqueue_batch stays the base class's loop.
    bulk_api = False
    second_queue = ("dramatiq: a second actor on its own queue, --queues default second; a "
                    "consumer per queue, behind the prefetched jobs only")

    def __init__(self, config: AdapterConfig) -> None:
        super().__init__(config)
        if not config.broker_url:
            raise ValueError(f"{config.backend} needs a broker URL")
        self.processes, self.threads = slot_map(config.slots, config.cpu_count)
        self.app = self._app_settings(config)
        redis_client = {"socket_timeout": 10, "socket_connect_timeout": 10}
        self.broker, self.actor, self.second_actor = build(
            self.app, **(redis_client if self.app.is_redis else {}))
        env = worker_env(config.records_dir, self.app.to_env())
        self.workers = WorkerGroup(config.backend, config.log_dir, env)

    def _app_settings(self, config: AdapterConfig) -> AppSettings:
        assert config.broker_url
        redis = config.broker_url.startswith(("redis://", "rediss://", "unix://"))
        heartbeat_s = config.options.get("heartbeat_timeout_s")
        chance = config.options.get("maintenance_chance")
        results_url = None
        if config.results:
            results_url = config.broker_url if redis else config.options.get("results_redis_url")
        return AppSettings(
            broker_url=config.broker_url, queue=config.queue,
            confirm_delivery=config.profile == "reliable" and not redis,
            heartbeat_timeout_ms=int(float(heartbeat_s) * 1000)
            if redis and heartbeat_s is not None else None,
            maintenance_chance=int(chance) if redis and chance is not None else None,
            results_url=results_url,
            second_queue=self.second_queue_name if self.serves_second_queue else None,
        )

    # -- settings -------------------------------------------------------------
    def _results_setting(self) -> str:
        if not self.config.results:
            return "off"
        if self.app.results_url is None:
            return ("unsupported here: Dramatiq's result backends are Redis or Memcached; "
                    "no Redis URL given for dramatiq-rabbitmq (options.results_redis_url), "
                    "ran without results")
        where = "the broker's Redis" if self.app.is_redis else "a separate Redis"
        return f"on: Results middleware, RedisBackend on {where}, store_results=True"

    def _queue_prefetch(self) -> int:
        """Messages one worker process holds (dramatiq_queue_prefetch, 2 x threads by default)."""
        return int(os.environ.get("dramatiq_queue_prefetch", 0)) or min(2 * self.threads, 65535)

    def required_settings(self) -> RequiredSettings:
        return {
            "processes": self.processes, "concurrency_per_process": self.threads,
            "pool": "threads in the worker processes the dramatiq CLI forks",
            "prefetch": self._queue_prefetch() * self.processes,
            "acks": "late: acked after the job returns (Dramatiq's only mode); a failed job is "
                    "nacked to the dead-letter queue",
            "results": self.app.results_url is not None,
            "enqueue": "actor.send_with_options: one broker call per job (no bulk API)",
        }

    def extra_settings(self) -> dict[str, Any]:
        redis = self.app.is_redis
        return {
            "library": f"dramatiq {dramatiq.__version__}",
            "broker": "redis" if redis else "rabbitmq",
            "worker_command": f"dramatiq adapters.dramatiq.app:setup_worker --processes "
                              f"{self.processes} --threads {self.threads} --queues <queue>",
            "dramatiq_queue_prefetch": f"{self._queue_prefetch()} per process (Dramatiq "
                                       "default 2 x threads; running jobs count against it)",
            "max_retries": 0,
            "max_retries_note": "actor option; Retries middleware default is 20 with backoff",
            "middleware": [type(m).__name__ for m in self.broker.middleware],
            "heartbeat_timeout_ms": (self.app.heartbeat_timeout_ms or DEFAULT_HEARTBEAT_MS)
            if redis else "n/a",
            "maintenance_chance": (f"{self.app.maintenance_chance or DEFAULT_MAINTENANCE_CHANCE}"
                                   " per million commands") if redis else "n/a",
            "confirm_delivery": self.app.confirm_delivery if not redis else "n/a",
            "redis_consume": ("a fetch of up to prefetch minus the outstanding jobs, no "
                              "blocking pop; an empty fetch, or a full prefetch, sleeps a "
                              "jittered backoff doubling from 5-10 ms to 0.5-1 s, half to all "
                              "of worker_timeout 1000 ms (Dramatiq defaults)") if redis else "n/a",
            "persistence": "as the Redis server is configured" if redis
            else "durable queues, persistent messages (delivery_mode=2), Dramatiq default",
            "result_backend": self._results_setting(),
        }

    # -- queue and workers ---------------------------------------------------
    def purge(self) -> None:
        """Empty this cell's queue, its delay queue and its dead letters.

        RabbitMQ's purge fails on a queue that does not exist yet, so the
        queues are declared on the server first.
        """
        for queue in self.queue_names():
            if not self.app.is_redis:
                self.broker.declare_queue(queue, ensure=True)
            self.broker.flush(queue)

    def start_workers(self) -> None:
        cmd = [console_script("dramatiq"), "adapters.dramatiq.app:setup_worker",
               "--processes", str(self.processes), "--threads", str(self.threads),
               "--queues", *self.queue_names()]
        # The CLI logs the ready line once per worker process; wait for all P.
        ready = f"(?s)(?:{READY_LINE}.*?){{{self.processes}}}"
        self.workers.start(cmd, 1, ready=ready, timeout_s=60.0)

    def enqueue(self, job: JobCall) -> None:
        self.actor.send_with_options(args=(job.job_id, job.sent_ns, job.spec, job.payload))

    def enqueue_second(self, job: JobCall) -> None:
        assert self.second_actor is not None, "a cell without the second_queue option"
        self.second_actor.send_with_options(args=(job.job_id, job.sent_ns, job.spec,
                                                  job.payload))

    def close(self) -> None:
        self.broker.close()
