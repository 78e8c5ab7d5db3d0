"""How close the raw ceilings come to a bare client loop, and which consumer layout is fastest.

`ceiling_check()` drains noop jobs on harness-owned brokers three ways per
broker: the ceiling backend as a run measures it (a throughput noop cell
through the Runner), and a bare loop of the same client with the same
consumer count and no harness code (harness/ceiling_bare.py, run with the
backend's interpreter). `process_sweep()` times the ceiling's noop cell
at several consumer-process counts (options["processes"]). The run itself
does not sweep: each sweep point costs a driver and a worker start (seconds),
so the ceilings use the CPU count (adapters/raw_consumers.py) unless told
otherwise, and the self-test prints the sweep that backs that default.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from adapters import BACKENDS
from harness.envs import python_of
from harness.runner import RunConfig, Runner
from scenarios.base import CellPlan, RunOptions
from scenarios.throughput import THROUGHPUT

CEILINGS = {"redis": "redis-raw", "amqp": "amqp-raw"}
BARE_JOBS = 20000


def _noop_cell(backend: str, options: RunOptions, processes: int | None) -> CellPlan:
    cell = next(c for c in THROUGHPUT.plan(backend, options) if c.params["duration_ms"] == 0)
    extra = {} if processes is None else {"processes": processes}
    return dataclasses.replace(cell, options={**cell.options, **extra})


def _measure(backend: str, options: RunOptions, counts: list[int | None], bare_consumers: int = 0
             ) -> dict[Any, dict[str, Any]]:
    """A noop throughput cell per consumer-process count (None: the default layout), and
    with bare_consumers the bare loop ("bare") on the same harness-owned broker."""
    out = Path(tempfile.mkdtemp(prefix="qb-ceiling-"))
    runner = Runner(RunConfig(scenarios=[THROUGHPUT.name], backends=[backend], rounds=1,
                              out=out, options=options))
    try:
        found: dict[Any, dict[str, Any]] = {}
        for n in counts:
            result = runner.run_cell(1, _noop_cell(backend, options, n))
            found[n] = {"jobs_per_s": result["metrics"].get("jobs_per_s"),
                        "processes": result.get("settings", {}).get("processes")}
        if bare_consumers:
            broker = BACKENDS[backend].broker or ""
            found["bare"] = {"jobs_per_s": bare_rate(broker, runner.brokers.url(broker),
                                                     bare_consumers)}
        return found
    finally:
        runner.brokers.stop_all()
        shutil.rmtree(runner.broker_dir, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)


def process_sweep(backend: str, slots: int = 8) -> dict[int, float | None]:
    """Noop jobs/s of `backend` at 1, 2, 4 and `slots` consumer processes (quick cells)."""
    counts = sorted({n for n in (1, 2, 4, slots) if slots % n == 0})
    rates = _measure(backend, RunOptions(quick=True, slots=slots), list(counts))
    return {n: rates[n]["jobs_per_s"] for n in counts}


def bare_rate(broker: str, url: str, consumers: int, jobs: int = BARE_JOBS) -> float:
    """Jobs/s of the bare loop (harness/ceiling_bare.py) in the ceiling's environment."""
    family = BACKENDS[CEILINGS[broker]].family
    done = subprocess.run([str(python_of(family)), "-m", "harness.ceiling_bare", broker, url,
                           str(jobs), str(consumers)], capture_output=True, text=True,
                          check=True, timeout=300, cwd=Path(__file__).resolve().parent.parent)
    return float(json.loads(done.stdout.strip().splitlines()[-1])["jobs_per_s"])


def ceiling_check(slots: int = 8, brokers: tuple[str, ...] = ("redis", "amqp")
                  ) -> dict[str, dict[str, Any]]:
    """Per broker: the ceiling's noop jobs/s, the bare loop's with `slots` consumer
    processes, and ceiling / bare (goal: at least 0.9)."""
    report: dict[str, dict[str, Any]] = {}
    for broker in brokers:
        backend = CEILINGS[broker]
        found = _measure(backend, RunOptions(quick=True, slots=slots), [None], slots)
        rate, bare = found[None]["jobs_per_s"], found["bare"]["jobs_per_s"]
        report[broker] = {"backend": backend, "ceiling_jobs_per_s": rate,
                          "bare_jobs_per_s": round(bare, 1), "consumers": slots,
                          "processes": found[None]["processes"],
                          "ratio": round(rate / bare, 3) if rate else None}
    return report
