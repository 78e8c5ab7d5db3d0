"""Runs inside a backend's environment for the adapter contract test.

    python tests/contract_probe.py BACKEND BROKER_URL WORKDIR

Starts the backend's workers through its adapter, enqueues 200 noop jobs (a
batch, a fill and one by one) and one job that raises, waits for them, stops
the workers, and prints a JSON report of what it saw (pids alive while
running, pids left after).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from adapters import load_adapter
from adapters.base import AdapterConfig, JobCall
from core import procs
from core.recorder import Event, RecordTail, count_events

JOBS = 200
FAILING_JOB = JOBS
CELL = "0000-contract"


def main() -> None:
    backend, url, workdir = sys.argv[1], sys.argv[2] or None, Path(sys.argv[3])
    config = AdapterConfig(backend=backend, broker_url=url, slots=4, profile="default",
                           results=False, queue=f"contract{int(time.time())}",
                           records_dir=workdir / "cells", log_dir=workdir / "logs")
    (workdir / "cells" / CELL).mkdir(parents=True)  # job ids 0.. belong to cell 0
    adapter = load_adapter(backend)(config)
    report: dict[str, object] = {"settings": adapter.settings()}
    adapter.purge()
    adapter.start_workers()
    adapter.begin()
    running = adapter.worker_pids()
    report["pids_running"] = running
    report["pids_alive_while_running"] = all(procs.alive(p) for p in running)
    spec = {"kind": "noop", "ms": 0}
    adapter.enqueue_batch([JobCall(i, time.monotonic_ns(), spec, "x" * 16) for i in range(70)])
    adapter.fill([JobCall(i, time.monotonic_ns(), spec, "x" * 16) for i in range(70, 140)])
    adapter.wait_enqueued()
    for i in range(140, JOBS):
        adapter.enqueue(JobCall(i, time.monotonic_ns(), spec, "x" * 16))
    adapter.enqueue(JobCall(FAILING_JOB, time.monotonic_ns(), {"kind": "fail", "ms": 0}, ""))
    tail = RecordTail(workdir / "cells" / CELL / "records")
    done = 0
    deadline = time.monotonic() + 60
    while done < JOBS + 1 and time.monotonic() < deadline:
        done += count_events(tail.read(), frozenset({Event.END, Event.ERROR}))
        time.sleep(0.05)
    time.sleep(0.5)  # let a duplicate delivery, if any, show up
    adapter.stop_workers()
    adapter.purge()
    adapter.close()
    # An in-process backend (asyncio) runs jobs in this very process: it is not "left".
    report["pids_left_after_stop"] = [p for p in running if procs.alive(p) and p != os.getpid()]
    report["pids_reported_after_stop"] = adapter.worker_pids()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
