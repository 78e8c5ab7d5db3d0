"""Where a run's time went: the seconds its cells took (`wall_s`) per backend and
scenario, what the run spent outside them (broker starts, layout sweeps, set-up),
and the cells' seconds by step (`wall_parts`: fills, windows, worker starts...)."""

from __future__ import annotations

import datetime
from typing import Any

from core.results import seconds_by_step
from reports.data import RunData
from reports.style import backend_rank
from scenarios import in_report_order


def _seconds_between(started: Any, finished: Any) -> float | None:
    try:
        parse = datetime.datetime.fromisoformat
        return (parse(str(finished).replace("Z", "+00:00"))
                - parse(str(started).replace("Z", "+00:00"))).total_seconds()
    except ValueError:
        return None


def run_time(data: RunData) -> dict[str, Any] | None:
    """Seconds per backend and scenario (a reused cell took none), each backend's total,
    and the run's start-to-finish time; None when no cell recorded its time."""
    cells = data.cells
    if "wall_s" not in cells or cells["wall_s"].isna().all():
        return None
    spent = cells.groupby(["backend", "scenario"])["wall_s"].sum()
    scenarios = [s.name for s in in_report_order() if s.name in set(cells["scenario"])]
    rows = []
    for backend in sorted(set(cells["backend"]), key=backend_rank):
        by_scenario = [float(spent.get((backend, s), 0.0)) for s in scenarios]
        rows.append({"backend": backend, "seconds": by_scenario, "total": sum(by_scenario)})
    in_cells = float(cells["wall_s"].sum())
    whole = _seconds_between(data.run.get("started"), data.run.get("finished"))
    return {"scenarios": scenarios, "rows": rows, "in_cells": in_cells, "whole": whole,
            # run.json's times are whole seconds: a short run may sum a little more in cells
            "outside": max(0.0, whole - in_cells) if whole is not None else None,
            "steps": _by_step(cells, scenarios)}


def _by_step(cells: Any, scenarios: list[str]) -> list[dict[str, Any]]:
    """Seconds per step (`wall_parts` keys) and scenario, the longest step first; empty
    when no cell recorded its steps (a run made before they were)."""
    if "wall_parts" not in cells:
        return []
    steps = seconds_by_step(zip(cells["scenario"], cells["wall_parts"], strict=True))
    return [{"step": step, "seconds": [row.get(s, 0.0) for s in scenarios],
             "total": sum(row.values())} for step, row in steps]
