"""redis-raw: the ceiling a Python client gets from Redis.

Producer LPUSHes a small JSON message per job (a pipeline for batches);
`slots` consumer processes BRPOP and run bench_job one at a time. In the
`reliable` profile consumers BLMOVE into a per-process list and remove the
message only after the job ends, and on start re-queue what dead consumers
left behind (at-least-once).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from adapters.base import JobCall
from adapters.raw_message import encode
from adapters.workers import WorkerGroup, WorkerProcessAdapter, python_module, worker_env


class RedisRawAdapter(WorkerProcessAdapter):
    bulk_api = True

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.client = redis.Redis.from_url(config.broker_url, socket_timeout=10)
        env = worker_env(config.records_dir, {"QB_BROKER_URL": config.broker_url or "",
                                              "QB_QUEUE": config.queue,
                                              "QB_PROFILE": config.profile})
        self.workers = WorkerGroup("redis-raw", config.log_dir, env)

    def settings(self) -> dict[str, Any]:
        reliable = self.config.profile == "reliable"
        return {"consumer_processes": self.config.slots, "concurrency_per_process": 1,
                "fetch": "BLMOVE to a processing list" if reliable else "BRPOP",
                "ack": "LREM after the job" if reliable else "none (removed on fetch)",
                "enqueue": "LPUSH (pipeline for batches)", "results": False}

    def purge(self) -> None:
        keys = [self.config.queue, *self.client.keys(f"{self.config.queue}:processing:*")]
        self.client.delete(*keys)

    def start_workers(self) -> None:
        cmd = python_module("adapters.redis_raw_worker")
        self.workers.start(cmd, self.config.slots, ready=r"redis-raw consumer ready")

    def enqueue(self, job: JobCall) -> None:
        self.client.lpush(self.config.queue, encode(job))

    def enqueue_batch(self, jobs: Sequence[JobCall]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for job in jobs:
            pipe.lpush(self.config.queue, encode(job))
        pipe.execute()

    def close(self) -> None:
        self.client.close()
