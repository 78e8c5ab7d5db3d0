"""The Dramatiq app of the dramatiq-redis and dramatiq-rabbitmq backends.

Used on both sides so producer and workers build the very same broker and
actor: the adapter (driver process) calls `build()` with its settings, and
the `dramatiq` CLI calls `setup_worker` (passed as its broker argument,
`adapters.dramatiq.app:setup_worker`), which reads the same settings from
the environment. Nothing happens at import time, so importing this module
never touches a broker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

from adapters.job import bench_job

ACTOR_NAME = "bench_job"
SECOND_ACTOR_NAME = "bench_job_second"  # the same job, declared on the second queue
ENV_PREFIX = "QB_DRAMATIQ_"


@dataclass(frozen=True)
class AppSettings:
    """What differs between cells; None means "Dramatiq's default"."""

    broker_url: str
    queue: str
    confirm_delivery: bool = False
    heartbeat_timeout_ms: int | None = None
    maintenance_chance: int | None = None
    results_url: str | None = None
    second_queue: str | None = None  # a second actor's queue, for depth cells

    @property
    def is_redis(self) -> bool:
        return self.broker_url.startswith(("redis://", "rediss://", "unix://"))

    def to_env(self) -> dict[str, str]:
        """Environment for the worker processes (empty string = not set)."""
        def text(value: object) -> str:
            if value is None:
                return ""
            return str(int(value)) if isinstance(value, bool) else str(value)

        return {f"{ENV_PREFIX}{key.upper()}": text(value) for key, value in vars(self).items()}

    @classmethod
    def from_env(cls) -> AppSettings:
        raw = {key: os.environ.get(f"{ENV_PREFIX}{key.upper()}", "")
               for key in cls.__dataclass_fields__}

        def number(key: str) -> int | None:
            return int(raw[key]) if raw[key] else None

        return cls(broker_url=raw["broker_url"], queue=raw["queue"],
                   confirm_delivery=raw["confirm_delivery"] == "1",
                   heartbeat_timeout_ms=number("heartbeat_timeout_ms"),
                   maintenance_chance=number("maintenance_chance"),
                   results_url=raw["results_url"] or None,
                   second_queue=raw["second_queue"] or None)


def make_broker(settings: AppSettings, **redis_client: Any) -> dramatiq.Broker:
    """The broker with Dramatiq's default middleware, plus Results when asked.

    Only parameters that differ from Dramatiq's defaults are passed, so a
    `default` cell is exactly what `RedisBroker(url=...)` gives a new user.
    `redis_client` (producer side only) adds client options such as timeouts.
    """
    broker: dramatiq.Broker
    if settings.is_redis:
        kwargs: dict[str, Any] = {}
        if settings.heartbeat_timeout_ms is not None:
            kwargs["heartbeat_timeout"] = settings.heartbeat_timeout_ms
        if settings.maintenance_chance is not None:
            kwargs["maintenance_chance"] = settings.maintenance_chance
        if redis_client:
            kwargs["client"] = redis.Redis.from_url(settings.broker_url, **redis_client)
        else:
            kwargs["url"] = settings.broker_url
        broker = RedisBroker(**kwargs)
    else:
        broker = RabbitmqBroker(url=settings.broker_url,
                                confirm_delivery=settings.confirm_delivery)
    if settings.results_url:
        broker.add_middleware(Results(backend=RedisBackend(url=settings.results_url)))
    return broker


def bench_job_no_result(job_id: int, sent_ns: int, spec: dict, payload: str = "") -> None:
    """bench_job returning None: without a result backend, Dramatiq logs a
    warning for every job whose actor returns a value, which would bill
    Dramatiq for one log line per job that a real app does not write."""
    bench_job(job_id, sent_ns, spec, payload)


def make_actor(broker: dramatiq.Broker, settings: AppSettings, name: str, queue: str
               ) -> dramatiq.Actor[Any, Any]:
    """bench_job as actor `name` on `queue`.

    max_retries=0: the Retries middleware would otherwise re-run a failing
    job up to 20 times with backoff, so one failure would show up as many
    START/ERROR records, long after the cell.
    """
    options: dict[str, Any] = {"max_retries": 0}
    if settings.results_url:
        options["store_results"] = True
        function = bench_job
    else:
        function = bench_job_no_result
    return dramatiq.actor(function, actor_name=name, queue_name=queue, broker=broker, **options)


def build(settings: AppSettings, **redis_client: Any
          ) -> tuple[dramatiq.Broker, dramatiq.Actor[Any, Any], dramatiq.Actor[Any, Any] | None]:
    """Broker, the cell's actor and the second queue's (None: not asked for), identical in
    the producer and in every worker process."""
    broker = make_broker(settings, **redis_client)
    second = (make_actor(broker, settings, SECOND_ACTOR_NAME, settings.second_queue)
              if settings.second_queue else None)
    return broker, make_actor(broker, settings, ACTOR_NAME, settings.queue), second


def setup_worker() -> None:
    """Broker callable for the `dramatiq` CLI: runs in every worker process."""
    broker, _, _ = build(AppSettings.from_env())
    dramatiq.set_broker(broker)
