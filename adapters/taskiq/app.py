"""The taskiq broker of the taskiq-redis and taskiq-rabbitmq backends.

Producer and workers build the very same broker with bench_job registered:
the adapter calls `build()` with its settings, and `taskiq worker
adapters.taskiq.app:worker_broker` calls `worker_broker` (a broker factory,
which the CLI accepts in place of a broker), which reads the same settings
from the environment (QB_TASKIQ_SETTINGS). Importing this module touches no broker.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

from taskiq import AsyncBroker
from taskiq_aio_pika import AioPikaBroker
from taskiq_aio_pika import Queue as AmqpQueue
from taskiq_redis import ListQueueBroker, RedisAsyncResultBackend, RedisStreamBroker

from adapters.job import bench_job_async

TASK_NAME = "bench_job"
SETTINGS_ENV = "QB_TASKIQ_SETTINGS"
KINDS = ("list", "stream", "amqp")
RESULT_TTL_S = 3600


@dataclass(frozen=True)
class BrokerSettings:
    """What differs between cells; None means "taskiq's default"."""

    kind: str  # list: ListQueueBroker, stream: RedisStreamBroker, amqp: AioPikaBroker
    url: str
    queue: str
    results: bool = False  # Redis only: a RedisAsyncResultBackend on the broker's Redis
    idle_timeout_ms: int | None = None  # stream: redelivery of unacked messages

    def to_env(self) -> dict[str, str]:
        """Environment for the worker processes."""
        return {SETTINGS_ENV: json.dumps(asdict(self))}

    @classmethod
    def from_env(cls) -> BrokerSettings:
        return cls(**json.loads(os.environ[SETTINGS_ENV]))


def _broker(settings: BrokerSettings) -> AsyncBroker:
    """The broker as its docs build it; only settings that differ from the defaults."""
    if settings.kind == "list":
        return ListQueueBroker(settings.url, queue_name=settings.queue)
    if settings.kind == "stream":
        extra = {} if settings.idle_timeout_ms is None else {
            "idle_timeout": settings.idle_timeout_ms}
        return RedisStreamBroker(settings.url, queue_name=settings.queue, **extra)
    if settings.kind == "amqp":
        return AioPikaBroker(settings.url, task_queues=[AmqpQueue(name=settings.queue)])
    raise ValueError(f"taskiq broker kind {settings.kind!r}; valid: {', '.join(KINDS)}")


def build(settings: BrokerSettings) -> AsyncBroker:
    """The broker with bench_job registered (and a result backend when asked, on Redis)."""
    broker = _broker(settings)
    if settings.results and settings.kind != "amqp":
        broker = broker.with_result_backend(RedisAsyncResultBackend(
            settings.url, result_ex_time=RESULT_TTL_S, prefix_str=settings.queue))
    broker.register_task(bench_job_async, task_name=TASK_NAME)
    return broker


def worker_broker() -> AsyncBroker:
    """Broker factory for the `taskiq worker` CLI: runs in every worker process."""
    return build(BrokerSettings.from_env())
