"""asyncio baseline: jobs are asyncio tasks in the driver process, no broker.

The event loop runs in a thread of the driver; `slots` bounds how many jobs
run at once (a semaphore), as a worker's concurrency would. Killing the
process loses every job: there is no durability at all.

options["asyncio_process"] (crash scenario): the preloaded jobs run in a
forked child instead, the one process a kill can take without taking the
driver (which records the outcome) with it.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Sequence
from typing import Any

from adapters.base import Adapter, AdapterConfig, JobCall, RequiredSettings, results_unsupported
from adapters.event_loop import PrivateLoop
from adapters.job import InjectedFailure, bench_job_async
from core.envnames import RECORDS_DIR_ENV


class AsyncioAdapter(Adapter):
    in_process = True
    async_jobs = True
    # no broker; a kill needs options.asyncio_process, whose one child is job process and node
    faults = frozenset({"job-process-kill", "node-kill"})

    def __init__(self, config: AdapterConfig) -> None:
        super().__init__(config)
        os.environ.setdefault(RECORDS_DIR_ENV, str(config.records_dir))
        self._loop: PrivateLoop | None = None
        self._pending: list[JobCall] = []
        self._semaphore: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._epoch = 0  # a purge moves it on: tasks spawned before then skip their job
        self._started = False
        self._in_child = bool(config.options.get("asyncio_process", False))
        self._children: list[int] = []

    def required_settings(self) -> RequiredSettings:
        where = "a forked child of the driver" if self._in_child else "the driver process"
        return {"processes": 1, "concurrency_per_process": self.config.slots,
                "pool": f"asyncio.create_task in {where}, bounded by a semaphore",
                "prefetch": None, "acks": "none: no broker", "results": results_unsupported(
                    self.config.results, "a task's return value stays in its asyncio.Task, "
                    "with no store"),
                "enqueue": "a task per job (preloaded jobs are held until the workers start)"}

    def extra_settings(self) -> dict[str, Any]:
        return {"durability": "none"}

    def purge(self) -> None:
        """Drop the held jobs, and the tasks still waiting for a slot: they are this
        queue's backlog (the running ones finish). Cancelling 100,000 waiters costs
        asyncio.Semaphore O(n) each, so they skip their job once they get a slot."""
        self._pending.clear()
        self._epoch += 1

    async def _run(self, job: JobCall, epoch: int) -> None:
        assert self._semaphore is not None
        async with self._semaphore:
            if epoch != self._epoch:
                return
            try:
                await bench_job_async(job.job_id, job.sent_ns, job.spec, job.payload)
            except InjectedFailure:  # recorded as an ERROR event already; any other error
                pass  # is the harness's own, and asyncio logs it

    def _spawn(self, job: JobCall) -> None:
        assert self._loop is not None
        task = self._loop.loop.create_task(self._run(job, self._epoch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def start_workers(self) -> None:
        if self._in_child:
            self._fork_child()
            return
        self._semaphore = asyncio.Semaphore(self.config.slots)
        self._loop = PrivateLoop()
        self._loop.start_thread("asyncio-jobs")

    def _fork_child(self) -> None:
        """Hand the pending jobs to a forked child that runs them as asyncio tasks.

        From the fork on the jobs live only in the child's memory, as an
        asyncio app's tasks live only in the app: a SIGKILL loses them all,
        and a replacement child (a second call) has nothing to run.
        """
        jobs, self._pending = self._pending, []
        pid = os.fork()
        if pid == 0:  # never returns into the driver
            code = 0
            try:
                asyncio.run(self._child_main(jobs))
            except BaseException:  # noqa: BLE001 - the records show what ran
                code = 1
            os._exit(code)
        self._children.append(pid)

    async def _child_main(self, jobs: list[JobCall]) -> None:
        self._semaphore = asyncio.Semaphore(self.config.slots)
        await asyncio.gather(*(self._run(job, self._epoch) for job in jobs))

    def _reap(self) -> list[int]:
        """Children still running (exited ones are reaped)."""
        self._children = [pid for pid in self._children if os.waitpid(pid, os.WNOHANG)[0] == 0]
        return list(self._children)

    def begin(self) -> None:
        if self._in_child:
            self._started = True
            return
        assert self._loop is not None
        pending, self._pending = self._pending, []
        for job in pending:
            self._loop.call_soon(self._spawn, job)
        self._started = True

    def enqueue(self, job: JobCall) -> None:
        if self._in_child and self._started:
            raise RuntimeError("asyncio_process runs preloaded jobs only")
        if not self._started:
            self._pending.append(job)
        else:
            assert self._loop is not None
            self._loop.call_soon(self._spawn, job)

    def fill(self, jobs: Sequence[JobCall]) -> None:
        """One hand-over to the loop for the whole batch instead of a wake-up per job."""
        if self._in_child or not self._started:
            for job in jobs:
                self.enqueue(job)
            return
        assert self._loop is not None
        self._loop.call_soon(self._spawn_all, list(jobs))

    def _spawn_all(self, jobs: list[JobCall]) -> None:
        for job in jobs:
            self._spawn(job)

    def wait_enqueued(self) -> None:
        if self._started and self._loop is not None:
            self._loop.wait_idle()

    def stop_workers(self, grace_s: float | None = None) -> None:
        for pid in self._reap():
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        self._children.clear()
        if self._loop is None:
            return

        def cancel_all() -> None:
            for task in list(self._tasks):
                task.cancel()

        self._loop.call_soon(cancel_all)
        self._loop.close()
        self._loop = None
        self._started = False

    def cpu_seconds(self) -> float | None:
        """The event loop thread's CPU time: the driver's own threads share the process
        (its watch loop reads every job's records in a window, which no other backend's
        CPU figure holds); None without a running loop thread, never the process's
        clock in its place (a window's two readings must be of one clock). A forked
        child (asyncio_process) is a process of its own."""
        if self._in_child:
            return super().cpu_seconds()
        return self._loop.thread_cpu_seconds() if self._loop is not None else None

    def worker_pids(self) -> list[int]:
        if self._in_child:
            return self._reap()
        return [os.getpid()] if self._loop is not None else []
