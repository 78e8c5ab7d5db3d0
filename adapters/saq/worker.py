"""saq worker settings for the saq backend, read from the environment.

Started the way saq users start workers: `saq adapters.saq.worker.settings
--workers P`; saq calls `settings()` (a callable returning the settings dict
is one of the forms its CLI accepts) in every worker process. The adapter
passes the cell's settings in QB_SAQ_* variables; an absent timer keeps
saq's own default.

A shorter sweep interval (the crash scenario's) also shortens the sweep's
wait for a swept job's abort, which saq's Worker leaves at Queue.sweep's
default (5 s per stuck job, one after another; a killed worker never
answers), to SWEEP_ABORT_S. (The Worker passes the interval as the sweep's
lock itself.)
"""

from __future__ import annotations

import functools
import os
from typing import Any

from saq import Queue

from adapters.job import bench_job_async
from adapters.workers import announce_ready

FUNCTION_NAME = "bench_job"

_URL, _QUEUE, _CONCURRENCY = "QB_SAQ_URL", "QB_SAQ_QUEUE", "QB_SAQ_CONCURRENCY"
_SWEEP = "QB_SAQ_SWEEP_S"
SWEEP_ABORT_S = 1.0


async def bench_job(ctx: dict[str, Any], *, job_id: int, sent_ns: int, spec: dict,
                    payload: str = "") -> int:
    """saq passes its context first and the job's arguments by keyword."""
    return await bench_job_async(job_id, sent_ns, spec, payload)


def worker_environment(url: str, queue: str, concurrency: int, sweep_s: int | None
                       ) -> dict[str, str]:
    """QB_SAQ_* variables for the workers; None keeps saq's sweep interval."""
    env = {_URL: url, _QUEUE: queue, _CONCURRENCY: str(concurrency)}
    if sweep_s is not None:
        env[_SWEEP] = str(sweep_s)
    return env


def _ready(ctx: dict[str, Any]) -> None:
    """saq's startup hook: its queue is connected, jobs are fetched right after."""
    announce_ready()


def settings() -> dict[str, Any]:
    env = os.environ
    queue = Queue.from_url(env[_URL], name=env[_QUEUE])
    built: dict[str, Any] = {
        "queue": queue,
        "functions": [(FUNCTION_NAME, bench_job)],
        "concurrency": int(env[_CONCURRENCY]),
        "startup": _ready,
    }
    if _SWEEP in env:
        sweep_s = int(env[_SWEEP])
        built["timers"] = {"sweep": sweep_s}
        queue.sweep = functools.partial(queue.sweep,  # type: ignore[method-assign]
                                        abort=SWEEP_ABORT_S)
    return built
