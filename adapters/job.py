"""The one job every backend runs, whatever the framework.

`bench_job(job_id, sent_ns, spec, payload)` records START, does the work the
spec asks for, then records END (or ERROR and re-raises). Arguments are
JSON-friendly so every framework's default serializer carries them. While
the cell's gate says bare (core.gate), a job records nothing and only adds
one to its process's finished count (core.jobcount), the self-test's baseline.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from itertools import repeat
from operator import itemgetter

from core.envnames import INJECT_DELAY_ENV
from core.gate import pass_gate
from core.jobcount import process_counter
from core.recorder import Event, Recorder, cell_index, process_recorder

GATE_POLL_S = 0.001
# Test knob (run --inject-delay-us): CPU time every library job burns on top of its work, a
# simulated slower library for the regression gate's own tests. Raw ceilings run
# ceiling_job, without it: they measure the broker, not the library.
INJECTED_MS = float(os.environ.get(INJECT_DELAY_ENV) or 0) / 1000.0
_JOB_ID, _SPEC = itemgetter("id"), itemgetter("spec")  # of a raw ceiling's decoded message


class InjectedFailure(RuntimeError):
    """Raised by jobs of kind 'fail' to test error reporting."""


def _burn_cpu(ms: float) -> None:
    """Spend `ms` of this thread's CPU time, not of wall time: on busy cores a thread is
    descheduled for part of a wall-clock loop, which then burns less than asked. The
    thread's CPU clock costs a system call (about 0.45 us), so the spin reads the cheap
    wall clock and checks the CPU clock only when the wall-clock share is spent."""
    begun = time.thread_time()
    left = wanted = ms / 1000.0
    while left > 0:
        deadline = time.perf_counter() + left
        while time.perf_counter() < deadline:
            pass
        left = wanted - (time.thread_time() - begun)


def _end(job_id: int, recorder: Recorder | None, event: Event) -> None:
    """Record END or ERROR; a bare job (no recorder) is counted instead."""
    if recorder is None:
        process_counter(job_id).add()
    else:
        recorder.record(job_id, event)


def _begin(job_id: int, spec: dict, injected_ms: float, bare: bool
           ) -> tuple[Recorder | None, float]:
    """The body both job flavours share, up to the sleep.

    Records START, fails or burns the CPU as the spec says, and returns the
    recorder (None for a bare job) and the seconds left to sleep, which the
    caller spends its own way (time.sleep or await asyncio.sleep). A cpu job
    blocks an event loop, as it would in real asyncio code.
    """
    recorder = None if bare else process_recorder(job_id)
    if recorder is not None:
        recorder.record(job_id, Event.START)
    kind, ms = spec.get("kind", "noop"), float(spec.get("ms", 0.0))
    if kind == "fail":
        _end(job_id, recorder, Event.ERROR)
        raise InjectedFailure(f"job {job_id} failed on purpose")
    if kind == "cpu" and ms > 0:
        _burn_cpu(ms)
    if injected_ms:
        _burn_cpu(injected_ms)
    return recorder, ms / 1000.0 if kind == "sleep" and ms > 0 else 0.0


def _run(job_id: int, spec: dict, injected_ms: float) -> int:
    while (bare := pass_gate(job_id)) is None:
        time.sleep(GATE_POLL_S)
    recorder, sleep_s = _begin(job_id, spec, injected_ms, bare)
    if sleep_s:
        time.sleep(sleep_s)
    _end(job_id, recorder, Event.END)
    return job_id


def bench_job(job_id: int, sent_ns: int, spec: dict, payload: str = "") -> int:
    """Synchronous job body, for thread and process workers."""
    return _run(job_id, spec, INJECTED_MS)


def ceiling_job(job_id: int, sent_ns: int, spec: dict, payload: str = "") -> int:
    """bench_job for the raw ceilings: never the injected delay."""
    return _run(job_id, spec, 0.0)


def ceiling_noops(messages: Sequence[dict]) -> bool:
    """Run a raw ceiling's fetched batch at once if it holds only noop jobs of one cell:
    wait for the gate once, then record every job's START and END in one write (a bare
    cell counts them with one store). False, with nothing run, for any other batch."""
    if not messages:
        return True
    # map() with C callables, not a generator: the check runs per message, and a ceiling
    # job costs little more than its json.loads
    ids = list(map(_JOB_ID, messages))
    kinds = list(map(dict.get, map(_SPEC, messages), repeat("kind"), repeat("noop")))
    if cell_index(min(ids)) != cell_index(max(ids)) or kinds.count("noop") != len(kinds):
        return False
    first = ids[0]
    while (bare := pass_gate(first)) is None:
        time.sleep(GATE_POLL_S)
    if bare:
        process_counter(first).add(len(ids))
    else:
        process_recorder(first).record_noops(ids)
    return True


async def bench_job_async(job_id: int, sent_ns: int, spec: dict, payload: str = "") -> int:
    """Coroutine job body, for asyncio-based workers (arq, the asyncio baseline)."""
    while (bare := pass_gate(job_id)) is None:
        await asyncio.sleep(GATE_POLL_S)
    recorder, sleep_s = _begin(job_id, spec, INJECTED_MS, bare)
    if sleep_s:
        await asyncio.sleep(sleep_s)
    _end(job_id, recorder, Event.END)
    return job_id
