"""The huey app of the huey backend: a RedisHuey with bench_job registered.

Producer and consumer build the very same instance: the adapter calls
`build()` with the cell's settings, and `huey_consumer adapters.huey.app.huey`
reads the same settings from the environment (QB_HUEY_*), the first time
the consumer asks for the module's `huey` attribute (PEP 562), so importing
this module never touches Redis.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from huey import RedisHuey
from huey.api import TaskWrapper
from huey.signals import SIGNAL_INTERRUPTED

from adapters.job import bench_job

TASK_NAME = "bench_job"
_URL, _QUEUE = "QB_HUEY_URL", "QB_HUEY_QUEUE"
_RESULTS, _REQUEUE = "QB_HUEY_RESULTS", "QB_HUEY_REQUEUE_INTERRUPTED"


def build(url: str, queue: str, results: bool, requeue_interrupted: bool
          ) -> tuple[RedisHuey, TaskWrapper]:
    """RedisHuey on `queue` and bench_job as its task; optionally the docs'
    SIGNAL_INTERRUPTED handler that enqueues again a task a consumer shutdown interrupted."""
    huey = RedisHuey(queue, url=url, results=results)
    task = huey.task(name=TASK_NAME)(bench_job)
    if requeue_interrupted:
        @huey.signal(SIGNAL_INTERRUPTED)
        def on_interrupted(signal: str, interrupted: Any, *args: Any, **kwargs: Any) -> None:
            huey.enqueue(interrupted)
    return huey, task


def environment(url: str, queue: str, results: bool, requeue_interrupted: bool
                ) -> dict[str, str]:
    """The QB_HUEY_* variables `build` reads back in the consumer."""
    return {_URL: url, _QUEUE: queue, _RESULTS: str(int(results)),
            _REQUEUE: str(int(requeue_interrupted))}


@functools.cache
def _from_environment() -> RedisHuey:
    env = os.environ
    return build(env[_URL], env[_QUEUE], env[_RESULTS] == "1", env[_REQUEUE] == "1")[0]


def __getattr__(name: str) -> Any:
    if name == "huey":
        return _from_environment()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
