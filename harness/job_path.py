"""What a raw ceiling's per-job path costs, in a tight loop and after a wait.

A ceiling consumer (adapters/raw_message.py `run_batch`) decodes a fetched message,
passes its cell's gate and counts or records the job. In a tight loop that path
costs a few microseconds more than `json.loads` alone; a consumer blocks on its
socket before each fetch (amqp-raw's is what pika has buffered, often one message),
and after each such wait the path runs with cold caches and may cost more. The figure after a
wait is the difference of two timings (with and without the call) and moves from
run to run by several microseconds.
The self-test times both in bare mode (the count, not the records), so the cost
the ceiling check's drains pay per job is on record. It does so in a process of
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
MESSAGE = (b'{"id": %d, "sent": 0, "spec": {"kind": "noop", "ms": 0}, "p": ""}' % JOB)
WAIT_S = 0.0002  # the blocking wait before each call, as for a message on a socket
CALLS = 2_000
REPEATS = 3


@contextmanager
def bare_cell() -> Iterator[None]:
    """An open gate in bare mode for CELL, in a temporary records folder."""
    saved = {name: os.environ.get(name) for name in (GATE_ENV, RECORDS_DIR_ENV)}
    with tempfile.TemporaryDirectory() as tmp:
        cell_dir = Path(tmp) / f"{CELL:04d}-job-path"
        cell_dir.mkdir()
        set_gate(cell_dir, True)
        set_bare(cell_dir, True)
        os.environ.update({GATE_ENV: "1", RECORDS_DIR_ENV: tmp})
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def per_call_us(call: Callable[[], object], wait: Callable[[], object] | None) -> float:
    """Median CPU microseconds per call of `call` (after `wait` each time, when given)."""
    timings = []
    for _ in range(REPEATS):
        began = time.process_time()
        for _ in range(CALLS):
            if wait is not None:
                wait()
            call()
        timings.append((time.process_time() - began) / CALLS * 1e6)
    return statistics.median(timings)


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
    (a select with nothing to read) is taken out."""
    read_end, write_end = os.pipe()
    try:
        def wait() -> object:
            return select.select([read_end], [], [], WAIT_S)

        with bare_cell():
            calls = {"json_loads": lambda: json.loads(MESSAGE),
                     "run_batch": lambda: run_batch([MESSAGE])}
            warm = {name: per_call_us(call, None) for name, call in calls.items()}
            waiting = per_call_us(lambda: None, wait)
            cold = {name: per_call_us(call, wait) - waiting for name, call in calls.items()}
    finally:
        os.close(read_end)
        os.close(write_end)
    return {"warm": warm, "after_wait": cold}


if __name__ == "__main__":
    print(json.dumps(measure()))
