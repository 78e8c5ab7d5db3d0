"""How close the raw ceilings come to a bare client loop (the self-test's ceiling check).

Per broker, on the self-test's harness-owned brokers:
- the layout sweep of harness/ceiling_layout.py (instrumented noop cells);
- at the fastest process count, the ceiling's drain of a preloaded noop
  batch in bare mode (no per-job records: what the recording costs is the
  observer effect, reported apart), and
- a bare loop of the same client with the same consumer count and no
  harness code (harness/ceiling_bare.py, in the backend's interpreter) on
  the same number of jobs, alternated with it: A B B A, medians.
Goal: ceiling / bare >= 0.9, i.e. the consumer design leaves little on the table.
"""

from __future__ import annotations

import json
import statistics
import subprocess
from pathlib import Path
from typing import Any, Protocol

from adapters import BACKENDS
from harness.ceiling_bare import LOOPS
from harness.ceiling_layout import CellRunner, fastest, sweep
from harness.envs import python_of
from scenarios.base import CellPlan, RunOptions

GOAL = 0.9
BARE_SECONDS = 2.0  # of work at the ceiling's rate
MIN_BARE_JOBS = 20_000
PAIRS = 2
# the order of each pair: A B, then B A, so a machine that drifts during the check
# slows both sides alike
ABBA = (("ceiling", "bare"), ("bare", "ceiling"))


class DrainCell(Protocol):
    """The self-test's preloaded-batch drain cell (harness.observer.ObserverProbe.cell)."""

    def __call__(self, backend: str, jobs: int, bare: bool = False,
                 processes: int | None = None, alternate_s: float | None = None
                 ) -> CellPlan: ...


def ceilings_by_broker() -> dict[str, str]:
    """broker kind -> the layout-sweep backend on it that others name as their ceiling."""
    named = {info.ceiling for info in BACKENDS.values() if info.ceiling}
    return {BACKENDS[name].broker or "": name for name in sorted(named)
            if BACKENDS[name].layout_sweep}


def bare_rate(broker: str, backend: str, url: str, consumers: int, jobs: int) -> float:
    """Jobs/s of the bare loop (harness/ceiling_bare.py) in the ceiling's environment."""
    done = subprocess.run([str(python_of(BACKENDS[backend].family)), "-m",
                           "harness.ceiling_bare", broker, url, str(jobs), str(consumers)],
                          capture_output=True, text=True, check=True, timeout=300,
                          cwd=Path(__file__).resolve().parent.parent)
    return float(json.loads(done.stdout.strip().splitlines()[-1])["jobs_per_s"])


def check_ceiling(run_cell: CellRunner, drain_cell: DrainCell, broker: str, url: str,
                  slots: int = 8) -> dict[str, Any]:
    """One broker's ceiling against its bare loop, with the sweep behind the layout."""
    backend = ceilings_by_broker()[broker]
    options = RunOptions(quick=True, slots=slots)
    rates = sweep(run_cell, backend, options)
    best = fastest(rates)
    row: dict[str, Any] = {"backend": backend, "consumers": slots, "sweep": rates,
                           "processes": best, "goal": GOAL}
    if best is None:
        return {**row, "status": "failed", "reason": "no sweep point ran"}
    if broker not in LOOPS:
        return {**row, "status": "failed",
                "reason": f"no bare {broker} loop in harness/ceiling_bare.py yet"}
    jobs = max(MIN_BARE_JOBS, int((rates[best] or 0) * BARE_SECONDS))
    ceiling, bare = [], []
    for pair in range(PAIRS):
        for side in ABBA[pair % 2]:
            if side == "bare":
                bare.append(bare_rate(broker, backend, url, slots, jobs))
                continue
            result = run_cell(1, drain_cell(backend, jobs, bare=True, processes=best))
            if result["status"] != "ok":
                return {**row, "status": "failed",
                        "reason": result.get("reason") or "no figure"}
            ceiling.append(float(result["metrics"]["jobs_per_s"]))
    ratio = statistics.median(ceiling) / statistics.median(bare)
    return {**row, "status": "ok", "jobs": jobs, "ceiling_bare_mode_per_s": ceiling,
            "bare_loop_per_s": bare, "ratio": round(ratio, 3), "passed": ratio >= GOAL}
