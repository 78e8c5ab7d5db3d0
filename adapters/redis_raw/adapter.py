"""redis-raw: the ceiling a Python client gets from Redis.

Producer LPUSHes a small JSON message per job (a pipeline for batches);
`slots` consumer processes (adapters/redis_raw/worker.py) BRPOP and run
bench_job one at a time. In the `reliable` profile consumers BLMOVE into a
per-process list and remove the message only after the job ends, and on
start re-queue what dead consumers left behind (at-least-once).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from adapters.base import AdapterConfig, JobCall, RequiredSettings
from adapters.raw_message import encode
from adapters.redis_keys import glob_escape, purge_keys
from adapters.redis_raw.worker import READY_LINE, processing_list
from adapters.workers import WorkerGroup, WorkerProcessAdapter, python_module, worker_env


class RedisRawAdapter(WorkerProcessAdapter):
    bulk_api = True  # a pipeline of LPUSHes

    def __init__(self, config: AdapterConfig) -> None:
        super().__init__(config)
        self.client = redis.Redis.from_url(config.broker_url, socket_timeout=10)
        env = worker_env(config.records_dir, {"QB_BROKER_URL": config.broker_url or "",
                                              "QB_QUEUE": config.queue,
                                              "QB_PROFILE": config.profile})
        self.workers = WorkerGroup("redis-raw", config.log_dir, env)

    def required_settings(self) -> RequiredSettings:
        reliable = self.config.profile == "reliable"
        return {"processes": self.config.slots, "concurrency_per_process": 1,
                "pool": "one job at a time in each consumer process",
                "prefetch": self.config.slots,
                "acks": "LREM from the processing list after the job" if reliable
                else "none: BRPOP removes the message on fetch",
                "results": False, "enqueue": "LPUSH per job; a pipeline of LPUSHes per batch"}

    def extra_settings(self) -> dict[str, Any]:
        reliable = self.config.profile == "reliable"
        return {"fetch": "BLMOVE to a processing list" if reliable else "BRPOP"}

    def purge(self) -> None:
        queue = self.config.queue
        purge_keys(self.client, [queue], [processing_list(glob_escape(queue), "*")])

    def start_workers(self) -> None:
        cmd = python_module("adapters.redis_raw.worker")
        self.workers.start(cmd, self.config.slots, ready=READY_LINE)

    def enqueue(self, job: JobCall) -> None:
        self.client.lpush(self.config.queue, encode(job))

    def enqueue_batch(self, jobs: Sequence[JobCall]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for job in jobs:
            pipe.lpush(self.config.queue, encode(job))
        pipe.execute()

    def close(self) -> None:
        self.client.close()
