"""Backend registry: plain data, so the coordinator imports no backend library.

Each backend names its environment family (a pyproject extra, built into
.venvs/<family>; "core" is the project's own environment), the broker it
needs, and the adapter class, imported only inside the driver.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adapters.base import Adapter


@dataclass(frozen=True)
class BackendInfo:
    name: str
    family: str
    broker: str | None
    adapter: str
    description: str
    ceiling: str | None = None  # the raw backend on the same broker


BACKENDS: dict[str, BackendInfo] = {
    info.name: info
    for info in [
        BackendInfo("asyncio", "core", None, "adapters.asyncio_local:AsyncioAdapter",
                    "asyncio.create_task in the driver process: the no-broker baseline"),
        BackendInfo("redis-raw", "redis", "redis", "adapters.redis_raw:RedisRawAdapter",
                    "LPUSH/BRPOP with redis-py: the Redis ceiling"),
        BackendInfo("amqp-raw", "amqp", "amqp", "adapters.amqp_raw:AmqpRawAdapter",
                    "pika publish/consume: the RabbitMQ ceiling"),
        BackendInfo("celery-redis", "celery", "redis", "adapters.celery_backend:CeleryAdapter",
                    "Celery, Redis broker", ceiling="redis-raw"),
        BackendInfo("celery-rabbitmq", "celery", "amqp", "adapters.celery_backend:CeleryAdapter",
                    "Celery, RabbitMQ broker", ceiling="amqp-raw"),
        BackendInfo("dramatiq-redis", "dramatiq", "redis",
                    "adapters.dramatiq_backend:DramatiqAdapter", "Dramatiq, Redis broker",
                    ceiling="redis-raw"),
        BackendInfo("dramatiq-rabbitmq", "dramatiq", "amqp",
                    "adapters.dramatiq_backend:DramatiqAdapter", "Dramatiq, RabbitMQ broker",
                    ceiling="amqp-raw"),
        BackendInfo("arq", "arq", "redis", "adapters.arq_backend:ArqAdapter",
                    "arq (asyncio, Redis)", ceiling="redis-raw"),
        BackendInfo("rq", "rq", "redis", "adapters.rq_backend:RqAdapter", "RQ (Redis Queue)",
                    ceiling="redis-raw"),
    ]
}


def backend_names() -> list[str]:
    return list(BACKENDS)


def load_adapter(name: str) -> type[Adapter]:
    """Import the adapter class of backend `name` (in its own environment)."""
    module_name, class_name = BACKENDS[name].adapter.split(":")
    return getattr(importlib.import_module(module_name), class_name)
