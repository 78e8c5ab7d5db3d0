"""The common job interface: what every backend adapter provides.

An adapter only translates between the harness and one framework: register
bench_job, start and stop the framework's real workers, enqueue jobs, and
report the settings it really ran with. Stdlib only at import time; the
framework is imported inside the adapter module, which runs in the
backend's own environment.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypedDict

from core import procs

# default: what a new user gets; reliable: the library's docs against lost jobs;
# tuned: the library's docs for throughput (slots stay the same for every backend).
PROFILES = ("default", "reliable", "tuned")
PROFILE_SETS = {"both": ("default", "reliable"), "all": PROFILES}  # --profile shorthands
# job-process-kill: SIGKILL the process running a job (a pool child, a work horse, a
# consumer); node-kill: SIGKILL one worker node's whole process tree at once.
WORKER_FAULTS = ("job-process-kill", "node-kill")
FAULTS = (*WORKER_FAULTS, "broker-kill")
# The cell option that makes the workers serve a second queue too (the depth scenario's
# cells set it; every other cell's workers consume their one queue, as before).
SECOND_QUEUE_OPTION = "second_queue"
# Where a library's way to let urgent work jump ahead is a job priority on the same queue
# (higher runs first), the second probe is sent with this one; every other job keeps 0.
SECOND_PRIORITY = 10


class RequiredSettings(TypedDict):
    """The settings every adapter reports, one name per idea (its extras come on top).

    prefetch counts over all worker processes (None: no broker to fetch from).
    """

    processes: int  # processes that run jobs (pool children, forked workers, consumers)
    concurrency_per_process: int  # jobs one of them runs at once (threads, coroutines)
    pool: str  # what runs a job: a prefork child, a thread, a coroutine, a work horse...
    prefetch: int | None  # messages the workers may hold at once, running ones included
    acks: str  # when the broker forgets a message
    # a result backend stores what jobs return; a text where the run asked for one and the
    # library has none (results_unsupported)
    results: bool | str
    enqueue: str  # the producer's call(s): one per job, and the bulk API if any


def results_unsupported(asked: bool, why: str) -> bool | str:
    """The `results` setting of a library that stores no return value: False, or when
    the run asked for results (--results), that it ran without them and why."""
    return f"unsupported here: {why}; ran without" if asked else False


@dataclass(frozen=True)
class JobCall:
    """One job to enqueue: the arguments of bench_job."""

    job_id: int
    sent_ns: int
    spec: dict[str, Any]
    payload: str


@dataclass(frozen=True)
class Tuning:
    """One change the `tuned` profile makes to a library default, and the doc that advises it."""

    value: Any
    source: str  # the library doc section (and URL) that recommends it for throughput

    def __str__(self) -> str:
        return f"{self.value} (source: {self.source})"


@dataclass
class AdapterConfig:
    """Everything an adapter needs; built by the driver from the cell file."""

    backend: str
    broker_url: str | None
    slots: int
    profile: str
    results: bool
    queue: str
    records_dir: Path
    log_dir: Path
    cpu_count: int = field(default_factory=lambda: os.cpu_count() or 1)
    options: dict[str, Any] = field(default_factory=dict)


class Adapter(ABC):
    """One backend. Subclasses declare their capabilities in the class variables below."""

    # -- capabilities ---------------------------------------------------------
    bulk_api: ClassVar[bool] = False  # enqueue_batch uses a real bulk API of the framework
    in_process: ClassVar[bool] = False  # jobs run inside the driver: one producer only
    async_jobs: ClassVar[bool] = False  # the job body is a coroutine on an event loop
    faults: ClassVar[frozenset[str]] = frozenset(FAULTS)  # what the crash scenario may inject
    # How one worker set serves a second queue, the library's own way (queue order,
    # round robin, a consumer per queue...); None: the library has no such thing here.
    second_queue: ClassVar[str | None] = None

    def __init__(self, config: AdapterConfig) -> None:
        self.config = config

    def settings(self) -> dict[str, Any]:
        """The settings the workers and producer really run with (goes into results).

        The tuned profile adds `tuned_changes`: each setting it changed, its value
        and the doc it comes from (empty: the library's docs advise nothing more).
        """
        out = {**self.required_settings(), "async_jobs": self.async_jobs,
               **self.extra_settings()}
        if self.tuned:
            out["tuned_changes"] = {name: str(change) for name, change in self.tunings().items()}
        return out

    @property
    def tuned(self) -> bool:
        return self.config.profile == "tuned"

    def tunings(self) -> dict[str, Tuning]:
        """What the tuned profile changes from this backend's defaults, keyed by setting;
        the adapter applies them when `self.tuned`."""
        return {}

    @property
    def serves_second_queue(self) -> bool:
        """The cell asked for a second queue (SECOND_QUEUE_OPTION) and the library has one."""
        return self.second_queue is not None and bool(self.config.options.get(SECOND_QUEUE_OPTION))

    @property
    def second_queue_name(self) -> str:
        return f"{self.config.queue}-second"

    def queue_names(self) -> list[str]:
        """The queues this cell's workers consume: the cell's, then the second one if served."""
        return [self.config.queue, *([self.second_queue_name] if self.serves_second_queue else [])]

    def enqueue_second(self, job: JobCall) -> None:
        """Enqueue one job on the second queue (adapters with `second_queue` override it)."""
        raise NotImplementedError(f"{self.config.backend} serves no second queue")

    @abstractmethod
    def required_settings(self) -> RequiredSettings:
        """The keys every backend reports (see RequiredSettings)."""

    def extra_settings(self) -> dict[str, Any]:
        """What only this framework has (its versions, timeouts, options)."""
        return {}

    @abstractmethod
    def purge(self) -> None:
        """Remove every job left in this cell's queue (fresh start)."""

    @abstractmethod
    def start_workers(self) -> None:
        """Start the workers and return once they are ready to take jobs."""

    def begin(self) -> None:
        """Called once the driver has noted that the workers are ready.

        In-process backends hold preloaded jobs until here, so none runs
        before the measurement clock says the workers are up.
        """

    @abstractmethod
    def enqueue(self, job: JobCall) -> None:
        """Enqueue one job with the framework's ordinary one-job call."""

    def enqueue_batch(self, jobs: Sequence[JobCall]) -> None:
        """Enqueue several jobs; adapters with a bulk API override this."""
        for job in jobs:
            self.enqueue(job)

    def fill(self, jobs: Sequence[JobCall]) -> None:
        """Enqueue `jobs` while nothing is measured (the cell's gate holds the workers
        idle), as fast as the adapter can: enqueue_batch here. An async library with no
        bulk API overrides it to send a batch concurrently (adapters.event_loop
        .bounded_gather), as its users send many jobs; the measured enqueue rate never
        comes from this path."""
        self.enqueue_batch(jobs)

    def backlog_filled(self) -> None:
        """Called once a fill has put a cell's backlog in place while the workers are held
        (Producer.fill). A store that plans its queries from statistics refreshes them
        here, as its own background maintenance would within a minute: PostgreSQL's
        autovacuum ANALYZE. Without it, thousands of rows sent into a just-truncated
        table were fetched with the plan for an empty one (procrastinate's first cell
        of a group ran at half the rate of the next)."""

    def wait_enqueued(self) -> None:
        """Return once every job enqueued so far has reached the queue. An enqueue
        call that only hands the job on (to another thread's event loop) overrides
        this; for the others the call's return already means it."""

    @abstractmethod
    def stop_workers(self, grace_s: float | None = None) -> None:
        """Stop every worker process; none may be left. `grace_s` bounds the wait for
        a graceful exit (None: the adapter's own)."""

    @abstractmethod
    def worker_pids(self) -> list[int]:
        """PIDs of live processes that execute jobs."""

    def cpu_seconds(self) -> float | None:
        """CPU time the workers have used so far (read at a window's two ends): their
        processes' CPU clocks. An adapter whose jobs share a process with the driver
        overrides it, or the driver's own work would count as the backend's; None when
        it cannot be read."""
        return procs.cpu_seconds(self.worker_pids())

    def kill_job_process(self, running: Sequence[int]) -> int | None:
        """SIGKILL one process that runs a job now: the first pid of `running` (the
        records' pids with a START and no END yet, oldest first) that is one of ours.
        Returns its pid once it is dead, None when none of them is alive."""
        live = set(self.worker_pids())
        for pid in running:
            if pid in live and procs.kill9_and_wait([pid]):
                return pid
        return None

    def kill_node(self, running: Sequence[int]) -> list[int]:
        """SIGKILL the whole process tree of the worker node that runs a job of
        `running`, all at once; returns the pids killed (empty: none found). A backend
        whose job process is its node (no pool) kills just that process."""
        killed = self.kill_job_process(running)
        return [] if killed is None else [killed]

    def capacity(self) -> int:
        """Slots the live workers can run at once (the crash scenario records it
        before and after a kill, so a replacement is seen to restore, never exceed,
        what died)."""
        return self.config.slots if self.worker_pids() else 0

    def dead_workers(self) -> int:
        """Worker processes the adapter started that have exited (a supervisor's
        cue); pool children and work horses that their parent replaces do not count."""
        return 0

    def replace_dead(self) -> None:
        """Start exactly what died (crash scenario): the same number of slots the
        dead workers had, next to the survivors, which keep their jobs."""

    def restart_workers(self) -> None:
        """Bring the worker set back to full strength after a kill."""
        self.stop_workers()
        self.start_workers()

    def remove_queue(self) -> None:
        """Delete what the group's queue left on the broker, once, by the driver that
        owns the workers (never by a forked producer: the workers still consume it)."""

    def close(self) -> None:
        """Release producer-side connections."""


# What the PostgreSQL backends record of backlog_filled.
STATISTICS_AFTER_FILL = "ANALYZE of the queue tables after each fill the workers were held for"
