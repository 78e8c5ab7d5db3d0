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
from typing import Any, ClassVar

PROFILES = ("default", "reliable")


@dataclass(frozen=True)
class JobCall:
    """One job to enqueue: the arguments of bench_job."""

    job_id: int
    sent_ns: int
    spec: dict[str, Any]
    payload: str


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
    """One backend. Subclasses set `bulk_api` when enqueue_batch uses one."""

    bulk_api: ClassVar[bool] = False
    in_process: ClassVar[bool] = False  # jobs run inside the driver: one producer only

    def __init__(self, config: AdapterConfig) -> None:
        self.config = config

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """The settings the workers and producer really run with (goes into results)."""

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

    @abstractmethod
    def stop_workers(self) -> None:
        """Stop every worker process; none may be left."""

    @abstractmethod
    def worker_pids(self) -> list[int]:
        """PIDs of live processes that execute jobs."""

    def kill_worker(self) -> int | None:
        """SIGKILL one job-executing process; returns its pid (crash scenario)."""
        return None

    def add_workers(self) -> None:
        """Start a fresh worker set next to the running one (crash scenario).

        A supervisor replacing a killed worker does not stop the survivors;
        stopping them would lose or re-queue their jobs by our hand.
        """
        self.start_workers()

    def restart_workers(self) -> None:
        """Bring the worker set back to full strength after a kill."""
        self.stop_workers()
        self.start_workers()

    def remove_queue(self) -> None:
        """Delete what the group's queue left on the broker, once, by the driver that
        owns the workers (never by a forked producer: the workers still consume it)."""

    def close(self) -> None:
        """Release producer-side connections."""
