"""Enqueueing a cell's jobs, recording INTENDED and SENT for each.

Three shapes of load: a batch as fast as the producer can (bulk where the
backend has a bulk API), an open-loop schedule (INTENDED is the schedule's
time, so a stalled enqueue shows as latency; a producer far behind it stops
at its cut-off, harness/driver/schedule.py), and one job at a time.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import gc
import mmap
import os
import struct
import time
import traceback
from typing import Any

from adapters import load_adapter
from adapters.base import Adapter, AdapterConfig, JobCall
from core.protocol import JobSpec, PhaseReport
from core.recorder import Event, Recorder
from core.words import counted
from harness.driver.schedule import Schedule, follow

BATCH = 250
SEND_BYTES = 4 * 1024 * 1024  # payload per send call, so a timed fill stops on time
# What a forked fill producer sends at least (jobs, or payload bytes: serialising large
# payloads is the cost there); less does not pay for its start.
FILL_SHARE = 1_000
FILL_SHARE_BYTES = 32 * 1024 * 1024
START_MARGIN_NS = 5_000_000  # between "every producer connected" and the schedule's start


def incompressible_text(size: int) -> str:
    """`size` characters of random base64: JSON-safe, and a serializer that
    compresses (RQ's zlib) cannot shrink it to nothing as it would "xxxx"."""
    return base64.b64encode(os.urandom(size * 3 // 4 + 3)).decode()[:size]


class SentCounts:
    """Per producer: jobs sent and whether the schedule's cut-off stopped it, in memory
    the forked producers share with the driver (an anonymous mmap is MAP_SHARED)."""

    def __init__(self, producers: int) -> None:
        self.producers = producers
        self.memory = mmap.mmap(-1, 16 * producers)

    def add(self, rank: int) -> None:
        (sent,) = struct.unpack_from("<q", self.memory, 16 * rank)
        struct.pack_into("<q", self.memory, 16 * rank, sent + 1)

    def cut_short(self, rank: int) -> None:
        struct.pack_into("<q", self.memory, 16 * rank + 8, 1)

    def total(self) -> int:
        return sum(struct.unpack_from("<q", self.memory, 16 * rank)[0]
                   for rank in range(self.producers))

    def any_cut_short(self) -> bool:
        return any(struct.unpack_from("<q", self.memory, 16 * rank + 8)[0]
                   for rank in range(self.producers))


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

    @property
    def batch(self) -> int:
        """Jobs per send call of a fill: BATCH, fewer where that would pass SEND_BYTES
        of payload."""
        return max(1, min(BATCH, SEND_BYTES // max(1, len(self.payload))))

    def _payload(self) -> str:
        """The payload of one job. An in-process queue keeps the object itself, so each
        job gets its own copy, as each task of a real app holds its own arguments;
        through a broker the bytes are copied anyway."""
        if self.adapter.in_process and self.payload:
            return self.payload[:-1] + self.payload[-1]
        return self.payload

    def send(self, first_id: int, count: int, bulk: bool, second_queue: bool = False,
             fill: bool = False, adapter: Adapter | None = None) -> None:
        """Enqueue ids first_id .. first_id + count - 1 now (one by one on the adapter's
        second queue if `second_queue`; through Adapter.fill, for a queue filled while
        the workers are held, if `fill`), through `adapter` if given."""
        adapter = adapter or self.adapter
        intended = time.monotonic_ns()
        jobs = [JobCall(first_id + i, intended, self.spec, self._payload()) for i in range(count)]
        rows: list[tuple[int, Event, int]] = []
        if (bulk or fill) and not second_queue:
            (adapter.fill if fill else adapter.enqueue_batch)(jobs)
            sent = time.monotonic_ns()
            for job in jobs:
                rows += [(job.job_id, Event.INTENDED, intended), (job.job_id, Event.SENT, sent)]
        else:
            enqueue = adapter.enqueue_second if second_queue else adapter.enqueue
            for job in jobs:
                enqueue(job)
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

    def fill(self, first_id: int, count: int, batch: int) -> None:
        """Send ids first_id .. first_id + count - 1 through Adapter.fill, in calls of
        `batch` jobs, while the workers are held at the gate. A large fill is split
        over up to one producer per CPU (forked, each with its own adapter and broker
        connection): the cores the held workers leave idle fill the queue sooner.

        The garbage collector is off during the fill and one full collection ends it.
        An in-process queue's jobs are live objects (asyncio's pending tasks), which
        the collector rescanned again and again as the fill grew them (300,000 tasks
        took 6.2 s to queue with it and 3.4 s without, /tmp measurement). Ending on a
        full collection also means no collection the fill ran up can land in the
        window that follows."""
        shares = max(count // FILL_SHARE, count * len(self.payload) // FILL_SHARE_BYTES)
        producers = 1 if self.adapter.in_process else max(1, min(self.config.cpu_count,
                                                                 shares))
        share = -(-count // producers)
        collecting = gc.isenabled()
        gc.disable()
        try:
            children = [self._fork_filler(first_id + rank * share,
                                          min(share, count - rank * share), batch)
                        for rank in range(1, producers)]
            self._fill_range(self.adapter, first_id, min(share, count), batch)
            failed = sum(os.waitpid(pid, 0)[1] != 0 for pid in children)
            if failed:
                raise RuntimeError(f"{counted(failed, 'forked fill producer')} failed")
            self.adapter.backlog_filled()
            gc.collect()
        finally:
            if collecting:
                gc.enable()

    def _fill_range(self, adapter: Adapter, first_id: int, count: int, batch: int) -> None:
        for offset in range(0, count, batch):
            self.send(first_id + offset, min(batch, count - offset), bulk=True, fill=True,
                      adapter=adapter)
        adapter.wait_enqueued()

    def _fork_filler(self, first_id: int, count: int, batch: int) -> int:
        pid = os.fork()
        if pid == 0:  # a fill producer child: never returns into the driver
            code = 0
            try:
                adapter = load_adapter(self.config.backend)(self.config)
                self._fill_range(adapter, first_id, count, batch)
                adapter.close()
            except BaseException:  # noqa: BLE001 - the parent reports the failed fill
                traceback.print_exc()  # into driver.log, which failure.txt quotes
                code = 1
            os._exit(code)
        return pid

    def send_open_loop(self, first_id: int, rate: float, duration_s: float,
                       report: PhaseReport, producers: int = 1,
                       max_jobs: int | None = None) -> int:
        """Send on a fixed schedule; INTENDED is the schedule's time, not the send's.
        Returns how many jobs were sent: those of the schedule still unsent at its
        cut-off (harness/driver/schedule.py) are counted in `report.unsent`.

        With several producers, each is a forked process with its own adapter
        (its own broker connection) taking every n-th slot of one schedule,
        which starts once all of them are connected.
        """
        total = max(1, min(int(rate * duration_s), max_jobs or 10**9))
        if self.adapter.in_process:
            producers = 1
        report.producers = producers
        counts = SentCounts(producers)
        children = [self._fork_producer(rank, producers, first_id, rate, duration_s, total,
                                        counts)
                    for rank in range(1, producers)]
        for _pid, ready, _go in children:  # every child connected: then the schedule starts
            os.read(ready, 1)
        start = time.monotonic_ns() + START_MARGIN_NS
        report.load_start_ns = start
        for _pid, _ready, go in children:
            with contextlib.suppress(BrokenPipeError):  # a child that failed is gone
                os.write(go, start.to_bytes(8, "little"))
        schedule = Schedule(start, rate, duration_s)
        self._send_on_schedule(self.adapter, first_id, schedule, range(0, total, producers),
                               counts, 0)
        report.producer_failures = sum(os.waitpid(pid, 0)[1] != 0 for pid, _, _ in children)
        for _pid, ready, go in children:
            os.close(ready)
            os.close(go)
        report.load_end_ns = time.monotonic_ns()
        sent = counts.total()
        report.unsent = total - sent
        if report.unsent:
            failed = (f"{report.producer_failures} producer process(es) failed"
                      if report.producer_failures else "")
            behind = schedule.cutoff_reason() if counts.any_cut_short() else ""
            report.unsent_reason = "; ".join(part for part in (behind, failed) if part)
        return sent

    def _fork_producer(self, rank: int, producers: int, first_id: int, rate: float,
                       duration_s: float, total: int, counts: SentCounts
                       ) -> tuple[int, int, int]:
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
                self._send_on_schedule(adapter, first_id, Schedule(start, rate, duration_s),
                                       range(rank, total, producers), counts, rank)
                adapter.close()
            except BaseException:  # noqa: BLE001 - the parent sees the missing jobs
                traceback.print_exc()  # into driver.log, which failure.txt quotes
                code = 1
            finally:
                os.write(ready_w, b"x")  # never leave the parent waiting
            os._exit(code)
        os.close(ready_w)
        os.close(go_r)
        return pid, ready_r, go_w

    def _send_on_schedule(self, adapter: Adapter, first_id: int, schedule: Schedule,
                          slots: range, counts: SentCounts, rank: int) -> None:
        """This producer's `slots` of the schedule, until its cut-off; each job sent
        is counted in `counts` at once (a producer that fails later still told)."""
        rows: list[tuple[int, Event, int]] = []

        def send(index: int, intended: int) -> None:
            job_id = first_id + index
            adapter.enqueue(JobCall(job_id, intended, self.spec, self.payload))
            rows.extend(((job_id, Event.INTENDED, intended),
                         (job_id, Event.SENT, time.monotonic_ns())))
            counts.add(rank)
            if len(rows) >= 2 * BATCH:
                self.recorder.record_many(rows)
                rows.clear()

        try:
            if follow(schedule, slots, send) < len(slots):
                counts.cut_short(rank)
        finally:
            if rows:
                self.recorder.record_many(rows)
