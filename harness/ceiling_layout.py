"""The consumer layout of a raw ceiling: the process count that is fastest here.

A ceiling is the most a Python client gets from its broker, and how many
processes its `slots` consumer threads should spread over depends on the
machine (cores, GIL contention, the broker's own CPU). So before the first
cell, a full run times the ceiling's noop drain at 2, 4, 8... processes (the
divisors of `slots` from the CPU count up, short steady-state windows) and
runs every cell of that backend with the fastest count; the sweep is kept in run.json and
in each cell's settings. A quick run keeps the CPU-count layout unless asked (`sweeps`).
Backends opt in with `layout_sweep = true` in backend.toml.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

from adapters import BACKENDS
from core import interrupts
from scenarios import SCENARIOS
from scenarios.base import CellPlan, RunOptions
from scenarios.throughput import THROUGHPUT, steady_workload

CellRunner = Callable[[int, CellPlan], dict[str, Any]]  # (round, cell) -> the cell's result

# The counted window of each sweep point; a quick run sweeps only when asked (sweeps), and
# then with half the window, the noisier for it: on this 2-core VM the points of one
# sweep spread from under 1% to 36% and the fastest changed from run to run (the committed
# run.json files, `ceiling_layouts`). A full run keeps 1 s.
SWEEP_WINDOW_S = {"quick": 0.5, "full": 1.0}


def sweep_points(slots: int, cpu_count: int = 1) -> list[int]:
    """1, 2, 4... up to `slots`, the counts that divide it evenly, from the CPU count
    on: a consumer process uses one core at most, and fewer processes than cores
    was the slowest layout in every sweep (results/reference/*/run.json)."""
    points, n = [], 1
    while n <= slots:
        if slots % n == 0 and n >= min(cpu_count, slots):
            points.append(n)
        n *= 2
    if slots not in points:
        points.append(slots)
    return points


def noop_cell(backend: str, options: RunOptions, extra: dict[str, Any]) -> CellPlan:
    """The backend's noop throughput window (without the idle probes after it), with
    `extra` adapter options."""
    cell = next(c for c in THROUGHPUT.plan(backend, options) if c.params["duration_ms"] == 0)
    window_only, _ = steady_workload(0, options, probes=False)
    return dataclasses.replace(cell, workload=window_only, options={**cell.options, **extra})


def sweep(run_cell: CellRunner, backend: str, options: RunOptions) -> dict[int, float | None]:
    """Noop jobs/s of `backend` at each process count (None where a cell failed)."""
    window = SWEEP_WINDOW_S["quick" if options.quick else "full"]
    short = dataclasses.replace(options, quick=True, window_s=window, durations_ms=(0,))
    rates: dict[int, float | None] = {}
    for processes in sweep_points(options.slots, os.cpu_count() or 1):
        interrupts.check()  # a cell's failure handling may have swallowed the signal
        result = run_cell(1, noop_cell(backend, short, {"processes": processes}))
        rates[processes] = result["metrics"].get("jobs_per_s") if result["status"] == "ok" \
            else None
    return rates


def fastest(rates: dict[int, float | None]) -> int | None:
    measured = {n: rate for n, rate in rates.items() if rate}
    return max(measured, key=lambda n: measured[n]) if measured else None


def sweeps(options: RunOptions) -> bool:
    """Whether the run sweeps: --sweep / --no-sweep, else a full run does and a quick one
    does not. A quick run's ceilings keep the CPU-count layout (adapters/slots.py): the
    sweep took about 30 s of its 5-minute budget, its 0.5 s points are too short to
    rank the layouts reliably, and a layout that stays put from run to run keeps the
    ceiling comparable between two quick runs (the CI gate's)."""
    return options.sweep if options.sweep is not None else not options.quick


def needs_sweep(backend: str, cells: list[CellPlan]) -> bool:
    """A layout-sweep backend with a speed-measuring cell to which the user gave no
    process count (crash and memory cells take the layout as it comes)."""
    return BACKENDS[backend].layout_sweep and any(
        c.backend == backend and "processes" not in c.options
        and SCENARIOS[c.scenario].measures_speed for c in cells)


def fitted(processes: int, slots: int | None) -> int:
    """The swept process count for a cell with its own `slots` (the scaling sweep): the
    largest count up to it that divides those slots (adapters/raw_consumers.py)."""
    if slots is None:
        return processes
    return max(n for n in range(1, min(processes, slots) + 1) if slots % n == 0)


def with_layout(cell: CellPlan, layouts: dict[str, dict[str, Any]]) -> CellPlan:
    """`cell` running at its backend's swept process count (unless the user set one)."""
    layout = layouts.get(cell.backend)
    if not layout or layout["processes"] is None or "processes" in cell.options:
        return cell
    return dataclasses.replace(cell, options={**cell.options,
                                              "processes": fitted(layout["processes"],
                                                                  cell.slots),
                                              "layout_sweep": layout["sweep"]})
