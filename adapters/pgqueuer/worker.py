"""The pgqueuer worker factory of the pgqueuer backend, read from the environment.

Started as `pgq run adapters.pgqueuer.worker:create_manager` would, through
`pgqueuer.run` (the CLI's own function: pgqueuer 1.6.0's `pgq run` fails
on its default --log-level, a str where it expects its LogLevel). The entrypoint is named
after the cell's queue, so a worker takes only its group's jobs; its
concurrency_limit (enforced in SQL across every worker) is the slots.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import asyncpg
import pgqueuer
from pgqueuer import AsyncpgDriver, Job, Queries, QueueManager
from pgqueuer.core import logconfig

from adapters.job import bench_job_async
from core.envnames import WORKER_PROFILE_ENV, WORKER_QUEUE_ENV, WORKER_URL_ENV

READY_LINE = "pgqueuer manager ready"
_URL, _QUEUE, _SLOTS, _PROFILE = WORKER_URL_ENV, WORKER_QUEUE_ENV, "QB_SLOTS", WORKER_PROFILE_ENV


def on_failure(profile: str) -> str:
    """What happens to a job that raised: deleted (pgqueuer's default) or held (reliable)."""
    return "hold" if profile == "reliable" else "delete"


def worker_environment(url: str, queue: str, slots: int, profile: str) -> dict[str, str]:
    return {_URL: url, _QUEUE: queue, _SLOTS: str(slots), _PROFILE: profile}


@asynccontextmanager
async def create_manager() -> AsyncIterator[QueueManager]:
    env = os.environ
    conn = await asyncpg.connect(env[_URL])
    manager = QueueManager(Queries(AsyncpgDriver(conn)))

    @manager.entrypoint(env[_QUEUE], concurrency_limit=int(env[_SLOTS]),
                        on_failure=on_failure(env.get(_PROFILE, "default")))
    async def bench_job(job: Job) -> None:
        args = json.loads(job.payload or b"{}")
        await bench_job_async(args["id"], args["sent"], args["spec"], args["p"])

    print(READY_LINE, flush=True)
    try:
        yield manager
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--heartbeat-timeout", type=float, default=30.0)
    parser.add_argument("--batch-size", type=int, default=10)  # as `pgq run --batch-size`
    args = parser.parse_args()
    logconfig.setup_fancy_logger(logconfig.LogLevel.INFO)  # what `pgq run` sets up
    asyncio.run(pgqueuer.run(create_manager, batch_size=args.batch_size,
                             heartbeat_timeout=timedelta(seconds=args.heartbeat_timeout)))


if __name__ == "__main__":
    main()
