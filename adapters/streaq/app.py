"""The streaq Worker of the streaq backend, with bench_job registered.

Producer and workers build the very same Worker: the adapter calls
`build()`, and `streaq run adapters.streaq.app:worker` reads the same
settings from the environment (QB_STREAQ_SETTINGS) the first time it asks
for the module's `worker` attribute (PEP 562), so importing this module
never touches Redis.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any

from streaq import Worker

from adapters.job import bench_job_async
from adapters.workers import announce_ready

TASK_NAME = "bench_job"
SETTINGS_ENV = "QB_STREAQ_SETTINGS"
# Worker(priorities=...) lists them lowest first; "normal" is streaq's one default priority,
# so the backlog's stream keeps its name when the depth cells add "high".
NORMAL, HIGH = "normal", "high"


@dataclass(frozen=True)
class WorkerSettings:
    """What differs between cells; None means "streaq's default"."""

    url: str
    queue: str
    concurrency: int
    results: bool = False  # off: ttl=0, nothing is stored when a task ends
    idle_timeout_s: float | None = None
    high_priority: bool = False  # a second priority stream the workers read first

    def to_env(self) -> dict[str, str]:
        return {SETTINGS_ENV: json.dumps(asdict(self))}


@asynccontextmanager
async def _ready() -> AsyncIterator[None]:
    """streaq's lifespan hook: Redis is connected, the consumers start right after."""
    announce_ready()
    yield


def build(settings: WorkerSettings) -> Worker[Any]:
    """The Worker with bench_job; only settings that differ from streaq's defaults."""
    extra: dict[str, Any] = {}
    if settings.idle_timeout_s is not None:
        extra["idle_timeout"] = settings.idle_timeout_s
    if settings.high_priority:
        extra["priorities"] = [NORMAL, HIGH]
    worker: Worker[Any] = Worker(redis_url=settings.url, queue_name=settings.queue,
                                 concurrency=settings.concurrency, lifespan=_ready, **extra)
    task_options: dict[str, Any] = {} if settings.results else {"ttl": 0}
    worker.task(name=TASK_NAME, **task_options)(bench_job_async)
    return worker


@functools.cache
def _from_environment() -> Worker[Any]:
    return build(WorkerSettings(**json.loads(os.environ[SETTINGS_ENV])))


def __getattr__(name: str) -> Any:
    if name == "worker":
        return _from_environment()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
