"""Enqueueing a cell's jobs, recording INTENDED and SENT for each.

Three shapes of load: a batch as fast as the producer can (bulk where the
backend has a bulk API), an open-loop schedule (INTENDED is the schedule's
time, so a stalled enqueue shows as latency), and one job at a time.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import os
import time
from typing import Any

from adapters import load_adapter
from adapters.base import Adapter, AdapterConfig, JobCall
from core.protocol import JobSpec, PhaseReport
from core.recorder import Event, Recorder

BATCH = 250
START_MARGIN_NS = 5_000_000  # between "every producer connected" and the schedule's start


def incompressible_text(size: int) -> str:
    """`size` characters of random base64: JSON-safe, and a serializer that
    compresses (RQ's zlib) cannot shrink it to nothing as it would "xxxx"."""
    return base64.b64encode(os.urandom(size * 3 // 4 + 3)).decode()[:size]


class Producer:
    """Sends one cell's jobs through the group's adapter."""

    def __init__(self, adapter: Adapter, config: AdapterConfig, recorder: Recorder,
                 spec: JobSpec, payload_bytes: int) -> None:
        self.adapter = adapter
        self.config = config
        self.recorder = recorder
        self.spec: dict[str, Any] = dataclasses.asdict(spec)
        self.payload = incompressible_text(payload_bytes)
        self.bulk_used = False

    def send(self, first_id: int, count: int, bulk: bool) -> None:
        """Enqueue ids first_id .. first_id + count - 1 now."""
        intended = time.monotonic_ns()
        jobs = [JobCall(first_id + i, intended, self.spec, self.payload) for i in range(count)]
        rows: list[tuple[int, Event, int]] = []
        if bulk:
            self.adapter.enqueue_batch(jobs)
            sent = time.monotonic_ns()
            for job in jobs:
                rows += [(job.job_id, Event.INTENDED, intended), (job.job_id, Event.SENT, sent)]
        else:
            for job in jobs:
                self.adapter.enqueue(job)
                rows += [(job.job_id, Event.INTENDED, intended),
                         (job.job_id, Event.SENT, time.monotonic_ns())]
                intended = time.monotonic_ns()
        self.recorder.record_many(rows)

    def send_all(self, first_id: int, total: int, report: PhaseReport, want_bulk: bool,
                 limit_s: float | None = None) -> int:
        """Enqueue `total` jobs as fast as the producer can, or as many as fit in
        `limit_s` seconds (in batches of BATCH); returns how many were sent."""
        bulk = want_bulk and self.adapter.bulk_api
        self.bulk_used = bulk
        report.load_start_ns = time.monotonic_ns()
        stop_ns = report.load_start_ns + int(limit_s * 1e9) if limit_s else None
        sent = 0
        while sent < total and (stop_ns is None or time.monotonic_ns() < stop_ns):
            count = min(BATCH, total - sent)
            self.send(first_id + sent, count, bulk)
            sent += count
        report.load_end_ns = time.monotonic_ns()
        return sent

    def send_open_loop(self, first_id: int, rate: float, duration_s: float,
                       report: PhaseReport, producers: int = 1,
                       max_jobs: int | None = None) -> int:
        """Send on a fixed schedule; INTENDED is the schedule's time, not the send's.

        With several producers, each is a forked process with its own adapter
        (its own broker connection) taking every n-th slot of one schedule,
        which starts once all of them are connected.
        """
        total = max(1, min(int(rate * duration_s), max_jobs or 10**9))
        if self.adapter.in_process:
            producers = 1
        report.producers = producers
        children = [self._fork_producer(rank, producers, first_id, rate, total)
                    for rank in range(1, producers)]
        for _pid, ready, _go in children:  # every child connected: then the schedule starts
            os.read(ready, 1)
        start = time.monotonic_ns() + START_MARGIN_NS
        report.load_start_ns = start
        for _pid, _ready, go in children:
            with contextlib.suppress(BrokenPipeError):  # a child that failed is gone
                os.write(go, start.to_bytes(8, "little"))
        self._send_on_schedule(self.adapter, first_id, start, rate, range(0, total, producers))
        report.producer_failures = sum(os.waitpid(pid, 0)[1] != 0 for pid, _, _ in children)
        for _pid, ready, go in children:
            os.close(ready)
            os.close(go)
        report.load_end_ns = time.monotonic_ns()
        return total

    def _fork_producer(self, rank: int, producers: int, first_id: int, rate: float,
                       total: int) -> tuple[int, int, int]:
        """A forked producer with its own adapter (its own broker connection), taking
        every `producers`-th slot of the schedule from `rank`. It says when it is
        connected and waits for the schedule's start, so connecting is not queue
        latency. Returns (pid, fd it says ready on, fd the start goes to)."""
        ready_r, ready_w = os.pipe()
        go_r, go_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # a producer child: never returns into the driver
            code = 0
            try:
                os.close(ready_r)
                os.close(go_w)
                adapter = load_adapter(self.config.backend)(self.config)
                os.write(ready_w, b"r")
                start = int.from_bytes(os.read(go_r, 8), "little")
                self._send_on_schedule(adapter, first_id, start, rate,
                                       range(rank, total, producers))
                adapter.close()
            except BaseException:  # noqa: BLE001 - the parent sees the missing jobs
                code = 1
            finally:
                os.write(ready_w, b"x")  # never leave the parent waiting
            os._exit(code)
        os.close(ready_w)
        os.close(go_r)
        return pid, ready_r, go_w

    def _send_on_schedule(self, adapter: Adapter, first_id: int, start: int, rate: float,
                          slots: range) -> None:
        interval = 1e9 / rate
        rows: list[tuple[int, Event, int]] = []
        for index in slots:
            job_id = first_id + index
            intended = start + int(index * interval)
            delay = intended - time.monotonic_ns()
            if delay > 0:
                time.sleep(delay / 1e9)
            adapter.enqueue(JobCall(job_id, intended, self.spec, self.payload))
            rows += [(job_id, Event.INTENDED, intended), (job_id, Event.SENT, time.monotonic_ns())]
            if len(rows) >= 2 * BATCH:
                self.recorder.record_many(rows)
                rows = []
        if rows:
            self.recorder.record_many(rows)
