"""What a raw ceiling's per-job path costs, in a tight loop and after a wait.

A ceiling consumer (adapters/raw_message.py `run_batch`) decodes a fetched message,
passes its cell's gate and counts or records the job. In a tight loop that path
costs a few microseconds more than `json.loads` alone; a consumer blocks on its
socket before each fetch (amqp-raw's is what pika has buffered, often one message),
and after each such wait the path runs with cold caches and may cost more. The figure after a
wait is the difference of two timings (with and without the call) and moves from
run to run by several microseconds.
The self-test times both in bare mode (the count, not the records), so the cost
the ceiling check's drains pay per job is on record. It also times a fetched batch of
BATCH messages, as redis-raw and pg-raw fetch them from a backlog, per message: decoding
alone, and run_batch bare and recorded (one NOOP_RUN record per batch), which is the
part of a ceiling's observer effect its consumers pay. It does so in a process of
its own (`python -m harness.job_path`), as a worker would: the gate, the count and
the cell's folder are cached per process once a job has looked them up.
"""

from __future__ import annotations

import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from adapters.raw_message import run_batch
from core.envnames import GATE_ENV, RECORDS_DIR_ENV
from core.gate import set_bare, set_gate
from core.recorder import ID_SPAN

CELL = 9_999  # a cell index no run reaches: the self-test's own gate and count
JOB = CELL * ID_SPAN + 1
TEMPLATE = b'{"id": %d, "sent": 0, "spec": {"kind": "noop", "ms": 0}, "p": ""}'
MESSAGE = TEMPLATE % JOB
WAIT_S = 0.0002  # the blocking wait before each call, as for a message on a socket
CALLS = 2_000
REPEATS = 3
BATCH = 64  # redis-raw's and pg-raw's largest fetch
BATCH_MESSAGES = [TEMPLATE % (JOB + offset) for offset in range(BATCH)]  # enqueue order
BATCH_CALLS = 300
BATCH_REPEATS = 7  # rounds of the three batch timings, interleaved


@contextmanager
def bare_cell() -> Iterator[Path]:
    """An open gate in bare mode for CELL, in a temporary records folder (its cell
    folder is yielded)."""
    saved = {name: os.environ.get(name) for name in (GATE_ENV, RECORDS_DIR_ENV)}
    with tempfile.TemporaryDirectory() as tmp:
        cell_dir = Path(tmp) / f"{CELL:04d}-job-path"
        cell_dir.mkdir()
        set_gate(cell_dir, True)
        set_bare(cell_dir, True)
        os.environ.update({GATE_ENV: "1", RECORDS_DIR_ENV: tmp})
        try:
            yield cell_dir
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def cpu_us(call: Callable[[], object], calls: int,
           wait: Callable[[], object] | None = None) -> float:
    """CPU microseconds per call of `call` over `calls` calls (after `wait` each time,
    when given)."""
    began = time.process_time()
    for _ in range(calls):
        if wait is not None:
            wait()
        call()
    return (time.process_time() - began) / calls * 1e6


def per_call_us(call: Callable[[], object], wait: Callable[[], object] | None) -> float:
    """Median CPU microseconds per call of `call` (after `wait` each time, when given)."""
    return statistics.median(cpu_us(call, CALLS, wait) for _ in range(REPEATS))


def batch_us(cell_dir: Path) -> dict[str, float]:
    """Microseconds per message of a fetched batch of BATCH noop messages: decoding
    alone, run_batch bare (counted) and recorded. The three are timed in turn, round
    after round, so a change of the machine's speed falls on all of them."""
    modes: dict[str, tuple[bool | None, Callable[[], object]]] = {
        "json_loads": (None, lambda: list(map(json.loads, BATCH_MESSAGES))),
        "bare": (True, lambda: run_batch(BATCH_MESSAGES)),
        "recorded": (False, lambda: run_batch(BATCH_MESSAGES))}
    timings: dict[str, list[float]] = {name: [] for name in modes}
    try:
        for _ in range(BATCH_REPEATS):
            for name, (bare, call) in modes.items():
                if bare is not None:
                    set_bare(cell_dir, bare)
                timings[name].append(cpu_us(call, BATCH_CALLS) / BATCH)
    finally:
        set_bare(cell_dir, True)
    return {"size": BATCH, **{name: statistics.median(values)
                              for name, values in timings.items()}}


def job_path_us() -> dict[str, dict[str, float]] | None:
    """measure(), in a new interpreter; None when that failed (its error is printed)."""
    done = subprocess.run([sys.executable, "-m", "harness.job_path"], capture_output=True,
                          text=True, timeout=120, cwd=Path(__file__).resolve().parent.parent)
    if done.returncode:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        print(f"ceiling per-job path not timed: {lines[-1]}", file=sys.stderr)
        return None
    return dict(json.loads(done.stdout))


def measure() -> dict[str, dict[str, float]]:
    """{"warm" | "after_wait": {"json_loads", "run_batch"}}: microseconds per message of
    decoding alone and of the whole per-job path; after a wait, the wait's own cost
    (a select with nothing to read) is taken out. "batch": batch_us()."""
    read_end, write_end = os.pipe()
    try:
        def wait() -> object:
            return select.select([read_end], [], [], WAIT_S)

        with bare_cell() as cell_dir:
            calls = {"json_loads": lambda: json.loads(MESSAGE),
                     "run_batch": lambda: run_batch([MESSAGE])}
            warm = {name: per_call_us(call, None) for name, call in calls.items()}
            waiting = per_call_us(lambda: None, wait)
            cold = {name: per_call_us(call, wait) - waiting for name, call in calls.items()}
            batch = batch_us(cell_dir)
    finally:
        os.close(read_end)
        os.close(write_end)
    return {"warm": warm, "after_wait": cold, "batch": batch}


if __name__ == "__main__":
    print(json.dumps(measure()))
