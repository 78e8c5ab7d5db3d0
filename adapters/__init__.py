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
    ]
}


def backend_names() -> list[str]:
    return list(BACKENDS)


def load_adapter(name: str) -> type[Adapter]:
    """Import the adapter class of backend `name` (in its own environment)."""
    module_name, class_name = BACKENDS[name].adapter.split(":")
    return getattr(importlib.import_module(module_name), class_name)
