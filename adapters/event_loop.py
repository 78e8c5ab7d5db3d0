"""An event loop of an adapter's own, never the thread's current one.

arq's producer runs its Redis calls to completion on one in the driver's
thread (one connection pool for every enqueue, not a loop per call); the
asyncio baseline runs one forever in a thread of the driver and hands it
jobs from there; taskiq's producer runs its broker's calls on one in a thread, so
an AMQP connection keeps its heartbeats between enqueues.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any, TypeVar

from adapters.base import JobCall

T = TypeVar("T")
IN_FLIGHT = 64  # concurrent sends of an adapter's fill (Adapter.fill)


async def bounded_gather(coros: Iterable[Awaitable[T]], limit: int = IN_FLIGHT) -> list[T]:
    """Await `coros` with at most `limit` in flight; their results in order."""
    slots = asyncio.Semaphore(limit)

    async def one(coro: Awaitable[T]) -> T:
        async with slots:
            return await coro

    return await asyncio.gather(*(one(coro) for coro in coros))


def send_keyed(loop: PrivateLoop, send: Callable[[JobCall], Awaitable[object | None]],
               jobs: Sequence[JobCall], library: str) -> None:
    """Run `send` for each job to completion on `loop` (concurrently for several), for
    a library whose enqueue returns None when the job's id is already queued: that is
    an error here. One job runs alone, so the measured enqueue carries no gather."""
    results = ([loop.run(send(jobs[0]))] if len(jobs) == 1
               else loop.run(bounded_gather(map(send, jobs))))
    for job, queued in zip(jobs, results, strict=True):
        if queued is None:
            raise RuntimeError(f"{library} did not enqueue job {job.job_id}: "
                               f"its id already exists")


class PrivateLoop:
    """A new event loop, run either call by call (run) or in a thread (start_thread)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None

    def run(self, coro: Awaitable[T], timeout_s: float | None = None) -> T:
        """Run `coro` to completion in the calling thread, bounded when timeout_s is given."""
        if timeout_s is not None:
            return self.loop.run_until_complete(asyncio.wait_for(coro, timeout_s))
        return self.loop.run_until_complete(coro)

    def start_thread(self, name: str) -> None:
        """Run the loop forever in a daemon thread; give it work with call_soon."""
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def thread_cpu_seconds(self) -> float | None:
        """CPU time the loop's thread (start_thread) has used; None when it is not running."""
        thread = self._thread
        if thread is None or thread.ident is None or not thread.is_alive():
            return None
        try:
            return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
        except OSError:  # the thread ended since is_alive()
            return None

    def submit(self, coro: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
        """Run `coro` on the loop's thread (start_thread first) and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        """Schedule `callback(*args)` on the loop from any thread."""
        self.loop.call_soon_threadsafe(callback, *args)

    def wait_idle(self, timeout_s: float = 60.0) -> None:
        """Return once the callbacks scheduled before this call have run."""
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0), self.loop).result(timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the loop's thread (after the callbacks already scheduled), then close it."""
        if self._thread is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout_s)
            self._thread = None
        if not self.loop.is_running():  # a thread stuck in a cpu job outlives the join
            self.loop.close()
