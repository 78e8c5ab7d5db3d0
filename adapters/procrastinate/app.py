"""The procrastinate App of the procrastinate backend, read from the environment.

Workers start the way procrastinate users start them:
`procrastinate --app=adapters.procrastinate.app.app worker --queues=Q --concurrency=N`.
The adapter passes the cell's settings in QB_PROCRASTINATE_* variables;
`app` is built on first access (PEP 562 module __getattr__), so the adapter
can build its own producer App with `build_app` where they are not set.

The reliable profile adds what procrastinate's docs recommend against jobs
stuck in `doing` after a worker died ("Retry stalled jobs"): a periodic
task that retries the jobs of workers whose heartbeat is too old. A crash
cell shortens the heartbeat timeouts and runs that task every second.
"""

from __future__ import annotations

import os
from typing import Any

import procrastinate

from adapters.job import bench_job_async
from core.envnames import WORKER_PROFILE_ENV, WORKER_QUEUE_ENV, WORKER_URL_ENV

TASK_NAME = "bench_job"
RETRY_TASK_NAME = "retry_stalled_jobs"
# procrastinate's defaults: a heartbeat every 10 s, stale after 30 s; the docs' recipe
# looks for stalled jobs every 10 minutes.
HEARTBEAT_S, STALLED_S, RETRY_CRON = 10.0, 30.0, "*/10 * * * *"
EVERY_SECOND = "* * * * * *"  # croniter's sixth field: seconds

_URL, _QUEUE, _PROFILE = WORKER_URL_ENV, WORKER_QUEUE_ENV, WORKER_PROFILE_ENV
_STALLED = "QB_PROCRASTINATE_STALLED_S"


def stalled_settings(stalled_s: float | None) -> dict[str, Any]:
    """Heartbeat interval, stalled timeout and retry schedule for a stalled timeout
    (None: procrastinate's defaults and the docs' schedule)."""
    if stalled_s is None:
        return {"update_heartbeat_interval_s": HEARTBEAT_S, "stalled_worker_timeout_s": STALLED_S,
                "retry_stalled_cron": RETRY_CRON}
    return {"update_heartbeat_interval_s": min(HEARTBEAT_S, stalled_s / 5),
            "stalled_worker_timeout_s": stalled_s, "retry_stalled_cron": EVERY_SECOND}


def worker_environment(url: str, queue: str, profile: str, stalled_s: float | None
                       ) -> dict[str, str]:
    """QB_* variables for a worker; no stalled timeout keeps procrastinate's defaults."""
    env = {_URL: url, _QUEUE: queue, _PROFILE: profile}
    if stalled_s is not None:
        env[_STALLED] = str(stalled_s)
    return env


def build_app(url: str, queue: str, reliable: bool, stalled_s: float | None
              ) -> procrastinate.App:
    """An App with bench_job on `queue` (and the stalled-job retry when reliable)."""
    timing = stalled_settings(stalled_s)
    defaults = {} if stalled_s is None else {
        "update_heartbeat_interval": timing["update_heartbeat_interval_s"],
        "stalled_worker_timeout": timing["stalled_worker_timeout_s"]}
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url),
                            worker_defaults=defaults)

    @app.task(name=TASK_NAME, queue=queue)
    async def bench_job(job_id: int, sent_ns: int, spec: dict, payload: str = "") -> int:
        return await bench_job_async(job_id, sent_ns, spec, payload)

    if reliable:
        @app.periodic(cron=timing["retry_stalled_cron"])
        @app.task(name=RETRY_TASK_NAME, queue=queue, queueing_lock=RETRY_TASK_NAME,
                  pass_context=True)
        async def retry_stalled_jobs(context: procrastinate.JobContext, timestamp: int) -> None:
            stalled = await app.job_manager.get_stalled_jobs(
                seconds_since_heartbeat=timing["stalled_worker_timeout_s"])
            for job in stalled:
                await app.job_manager.retry_job(job)

    return app


def __getattr__(name: str) -> Any:
    if name == "app":
        env = os.environ
        stalled = env.get(_STALLED)
        return build_app(env[_URL], env[_QUEUE], env.get(_PROFILE) == "reliable",
                         None if stalled is None else float(stalled))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
