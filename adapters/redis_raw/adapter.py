"""redis-raw: the ceiling a Python client gets from Redis.

Producer LPUSHes a small JSON message per job (one LPUSH of many for a batch);
`slots` consumer threads over a few processes (adapters/raw_consumers.py,
adapters/redis_raw/worker.py, hiredis parser) fetch batches (a pipelined
RPOP with a count, or one Lua call of LMOVEs when reliable) and run the jobs
of a batch in order (adapters/raw_message.py). In the `reliable` profile the
batch moves into a per-consumer list and each message is removed after its
job (pipelined LREMs); a starting consumer re-queues what dead ones left
behind (at-least-once).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from adapters.base import AdapterConfig, JobCall, RequiredSettings, results_unsupported
from adapters.raw_consumers import consumer_env, layout, layout_source
from adapters.raw_message import ACK_FLUSH_S, NO_RETURN_STORE, encode
from adapters.redis_keys import glob_escape, purge_keys
from adapters.redis_raw.worker import (
    BATCH,
    READY_LINE,
    processing_list,
)
from adapters.workers import WorkerGroup, WorkerProcessAdapter, python_module, worker_env


class RedisRawAdapter(WorkerProcessAdapter):
    bulk_api = True  # one LPUSH of many messages

    def __init__(self, config: AdapterConfig) -> None:
        super().__init__(config)
        self.client = redis.Redis.from_url(config.broker_url, socket_timeout=10)
        self.processes, self.threads = layout(config)
        env = worker_env(config.records_dir, consumer_env(config, self.threads))
        self.workers = WorkerGroup("redis-raw", config.log_dir, env)

    def required_settings(self) -> RequiredSettings:
        reliable = self.config.profile == "reliable"
        return {"processes": self.processes, "concurrency_per_process": self.threads,
                "pool": "consumer threads, one job at a time each",
                "prefetch": BATCH * self.config.slots,
                "acks": "LREM from the processing list after the job, pipelined" if reliable
                else "none: RPOP removes the message on fetch",
                "results": results_unsupported(self.config.results, NO_RETURN_STORE),
                "enqueue": "LPUSH per job; one LPUSH of a batch's messages"}

    def extra_settings(self) -> dict[str, Any]:
        reliable = self.config.profile == "reliable"
        how = ("one Lua call of LMOVEs to a processing list" if reliable
               else "RPOP with a count and LLEN, pipelined")
        return {"fetch": f"{how}, at most {BATCH} and a fair share of the queue; "
                         f"a blocking pop when it is empty",
                "fetch_batch": BATCH, "ack_flush_s": ACK_FLUSH_S if reliable else None,
                "parser": "hiredis" if redis.utils.HIREDIS_AVAILABLE else "python",
                "processes_from": layout_source(self.config)}

    def purge(self) -> None:
        queue = self.config.queue
        purge_keys(self.client, [queue], [processing_list(glob_escape(queue), "*")])

    def start_workers(self) -> None:
        cmd = python_module("adapters.redis_raw.worker")
        self.workers.start(cmd, self.processes, ready=READY_LINE)

    def enqueue(self, job: JobCall) -> None:
        self.client.lpush(self.config.queue, encode(job))

    def enqueue_batch(self, jobs: Sequence[JobCall]) -> None:
        """One LPUSH of every message, in order: the first job is popped first."""
        self.client.lpush(self.config.queue, *(encode(job) for job in jobs))

    def close(self) -> None:
        self.client.close()
