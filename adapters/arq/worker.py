"""arq worker settings for the arq backend, read from the environment.

Started the way arq users start workers: `arq adapters.arq.worker.WorkerSettings`.
The adapter (adapters/arq/adapter.py) passes the cell's settings in QB_ARQ_*
variables; a setting that is absent keeps arq's own default, so the
`default` profile really is what a new user gets.

WorkerSettings is built on first access (PEP 562 module __getattr__) so the
adapter can import `worker_environment` in the driver, where these
variables are not set.
"""

from __future__ import annotations

import os
from typing import Any

from arq.connections import RedisSettings

from adapters.job import bench_job_async
from core.envnames import WORKER_QUEUE_ENV, WORKER_URL_ENV

FUNCTION_NAME = "bench_job"

_URL, _QUEUE = WORKER_URL_ENV, WORKER_QUEUE_ENV
_MAX_JOBS = "QB_ARQ_MAX_JOBS"
_POLL_DELAY = "QB_ARQ_POLL_DELAY_S"
_KEEP_RESULT = "QB_ARQ_KEEP_RESULT_S"
_READ_LIMIT = "QB_ARQ_QUEUE_READ_LIMIT"
_JOB_TIMEOUT = "QB_ARQ_JOB_TIMEOUT_S"


async def bench_job(ctx: dict[str, Any], job_id: int, sent_ns: int, spec: dict,
                    payload: str = "") -> int:
    """arq passes its context first; the benchmark job does not need it."""
    return await bench_job_async(job_id, sent_ns, spec, payload)


def worker_environment(url: str, queue: str, max_jobs: int, poll_delay_s: float | None,
                       keep_result_s: float | None, queue_read_limit: int | None = None,
                       job_timeout_s: float | None = None) -> dict[str, str]:
    """QB_ARQ_* variables for a worker; None leaves arq's default in place."""
    env = {_URL: url, _QUEUE: queue, _MAX_JOBS: str(max_jobs)}
    for name, value in ((_POLL_DELAY, poll_delay_s), (_KEEP_RESULT, keep_result_s),
                        (_READ_LIMIT, queue_read_limit), (_JOB_TIMEOUT, job_timeout_s)):
        if value is not None:
            env[name] = str(value)
    return env


def _build_settings() -> type:
    env = os.environ
    attrs: dict[str, Any] = {
        "functions": [bench_job],
        "redis_settings": RedisSettings.from_dsn(env[_URL]),
        "queue_name": env[_QUEUE],
        "max_jobs": int(env[_MAX_JOBS]),
    }
    if _POLL_DELAY in env:
        attrs["poll_delay"] = float(env[_POLL_DELAY])
    if _KEEP_RESULT in env:
        attrs["keep_result"] = float(env[_KEEP_RESULT])
    if _READ_LIMIT in env:
        attrs["queue_read_limit"] = int(env[_READ_LIMIT])
    if _JOB_TIMEOUT in env:
        attrs["job_timeout"] = float(env[_JOB_TIMEOUT])
    return type("WorkerSettings", (), attrs)


def __getattr__(name: str) -> Any:
    if name == "WorkerSettings":
        return _build_settings()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
