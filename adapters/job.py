"""The one job every backend runs, whatever the framework.

`bench_job(job_id, sent_ns, spec, payload)` records START, does the work the
spec asks for, then records END (or ERROR and re-raises). Arguments are
JSON-friendly so every framework's default serializer carries them.
"""

from __future__ import annotations

import asyncio
import os
import time

from harness.recorder import GATE_FILE, Event, cell_dir_of, cell_index, process_recorder

KINDS = ("noop", "sleep", "cpu", "fail")
GATE_ENV = "QB_GATE"  # set (to anything) by the driver: jobs wait for their cell's gate
_open_gates: set[int] = set()


class InjectedFailure(RuntimeError):
    """Raised by jobs of kind 'fail' to test error reporting."""


def _burn_cpu(ms: float) -> None:
    deadline = time.perf_counter() + ms / 1000.0
    while time.perf_counter() < deadline:
        pass


def _gate_is_open(job_id: int) -> bool:
    """The start gate: jobs wait until the driver opens their cell's gate.

    Preloaded jobs would otherwise be drained by the first worker to boot
    while its siblings still start, or start while the producer still
    enqueues. A gate-less run (no QB_GATE, e.g. the contract test) is open.
    """
    index = cell_index(job_id)
    if index in _open_gates or GATE_ENV not in os.environ:
        return True
    if (cell_dir_of(job_id) / GATE_FILE).exists():
        _open_gates.add(index)
        return True
    return False


def bench_job(job_id: int, sent_ns: int, spec: dict, payload: str = "") -> int:
    """Synchronous job body, for thread and process workers."""
    while not _gate_is_open(job_id):
        time.sleep(0.001)
    recorder = process_recorder(job_id)
    recorder.record(job_id, Event.START)
    kind, ms = spec.get("kind", "noop"), float(spec.get("ms", 0.0))
    if kind == "fail":
        recorder.record(job_id, Event.ERROR)
        raise InjectedFailure(f"job {job_id} failed on purpose")
    if kind == "sleep" and ms > 0:
        time.sleep(ms / 1000.0)
    elif kind == "cpu" and ms > 0:
        _burn_cpu(ms)
    recorder.record(job_id, Event.END)
    return job_id


async def bench_job_async(job_id: int, sent_ns: int, spec: dict, payload: str = "") -> int:
    """Coroutine job body, for asyncio-based workers (arq, the asyncio baseline).

    A cpu job blocks the event loop, as it would in real asyncio code.
    """
    while not _gate_is_open(job_id):
        await asyncio.sleep(0.001)
    recorder = process_recorder(job_id)
    recorder.record(job_id, Event.START)
    kind, ms = spec.get("kind", "noop"), float(spec.get("ms", 0.0))
    if kind == "fail":
        recorder.record(job_id, Event.ERROR)
        raise InjectedFailure(f"job {job_id} failed on purpose")
    if kind == "sleep" and ms > 0:
        await asyncio.sleep(ms / 1000.0)
    elif kind == "cpu" and ms > 0:
        _burn_cpu(ms)
    recorder.record(job_id, Event.END)
    return job_id
