"""The one job every backend runs, whatever the framework.

`bench_job(job_id, sent_ns, spec, payload)` records START, does the work the
spec asks for, then records END (or ERROR and re-raises). Arguments are
JSON-friendly so every framework's default serializer carries them.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import asdict, dataclass

from harness.recorder import Event, process_recorder

KINDS = ("noop", "sleep", "cpu", "fail")
GATE_ENV = "QB_GATE"
_gate_seen_open = False


@dataclass(frozen=True)
class JobSpec:
    """What a job does: noop, sleep(ms), cpu(ms) busy loop, or fail (raises)."""

    kind: str = "noop"
    ms: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown job kind {self.kind!r}; valid: {', '.join(KINDS)}")
        if self.ms < 0:
            raise ValueError("job duration must be >= 0 ms")

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class InjectedFailure(RuntimeError):
    """Raised by jobs of kind 'fail' to test error reporting."""


def _burn_cpu(ms: float) -> None:
    deadline = time.perf_counter() + ms / 1000.0
    while time.perf_counter() < deadline:
        pass


def _gate_is_open() -> bool:
    """The start gate: jobs wait until the driver says every worker is ready.

    Preloaded jobs would otherwise be drained by the first worker to boot
    while its siblings still start. A gate-less run (no QB_GATE) is open.
    """
    global _gate_seen_open
    if not _gate_seen_open:
        path = os.environ.get(GATE_ENV)
        _gate_seen_open = path is None or os.path.exists(path)
    return _gate_seen_open


def bench_job(job_id: int, sent_ns: int, spec: dict, payload: str = "") -> int:
    """Synchronous job body, for thread and process workers."""
    while not _gate_is_open():
        time.sleep(0.001)
    recorder = process_recorder()
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
    while not _gate_is_open():
        await asyncio.sleep(0.001)
    recorder = process_recorder()
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
