"""asyncio baseline: jobs are asyncio tasks in the driver process, no broker.

The event loop runs in a thread of the driver; `slots` bounds how many jobs
run at once (a semaphore), as a worker's concurrency would. Killing the
process loses every job: there is no durability at all.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

from adapters.base import Adapter, JobCall
from adapters.job import bench_job_async


class AsyncioAdapter(Adapter):
    in_process = True
    def __init__(self, config: Any) -> None:
        super().__init__(config)
        os.environ.setdefault("QB_RECORDS_DIR", str(config.records_dir))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pending: list[JobCall] = []
        self._semaphore: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False

    def settings(self) -> dict[str, Any]:
        return {"executor": "asyncio.create_task", "processes": 1,
                "concurrency": self.config.slots, "durability": "none", "results": False}

    def purge(self) -> None:
        self._pending.clear()

    async def _run(self, job: JobCall) -> None:
        assert self._semaphore is not None
        async with self._semaphore:
            try:
                await bench_job_async(job.job_id, job.sent_ns, job.spec, job.payload)
            except Exception:  # noqa: BLE001 - recorded as an ERROR event already
                pass

    def _spawn(self, job: JobCall) -> None:
        assert self._loop is not None
        task = self._loop.create_task(self._run(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def start_workers(self) -> None:
        ready = threading.Event()

        def loop_main() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._semaphore = asyncio.Semaphore(self.config.slots)
            self._loop.call_soon(ready.set)
            self._loop.run_forever()

        self._thread = threading.Thread(target=loop_main, name="asyncio-jobs", daemon=True)
        self._thread.start()
        ready.wait(10)

    def begin(self) -> None:
        assert self._loop is not None
        pending, self._pending = self._pending, []
        for job in pending:
            self._loop.call_soon_threadsafe(self._spawn, job)
        self._started = True

    def enqueue(self, job: JobCall) -> None:
        if not self._started:
            self._pending.append(job)
        else:
            self._loop.call_soon_threadsafe(self._spawn, job)

    def stop_workers(self) -> None:
        if self._loop is None:
            return
        loop = self._loop

        def cancel_all() -> None:
            for task in list(self._tasks):
                task.cancel()
            loop.stop()

        loop.call_soon_threadsafe(cancel_all)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None
        self._started = False

    def worker_pids(self) -> list[int]:
        return [os.getpid()] if self._loop is not None else []
