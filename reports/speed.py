"""The report's machine-speed section: how much of each steady-state figure's spread
over rounds is the machine's (the speed meter, harness/speed) and how much is left
once the machine's speed is taken out (jobs_per_loop)."""

from __future__ import annotations

from typing import Any

from core.numbers import relative_spread
from reports.data import RunData
from reports.style import backend_rank, describe_params


def machine_speed(data: RunData) -> dict[str, Any] | None:
    """One row per (scenario, backend, point) with two or more ok rounds that the meter
    timed: the probe loop's range, and the round spread of jobs/s and of jobs_per_loop.
    None when no cell has a speed figure (a run from before the meter, or one round)."""
    cells = data.cells
    if "jobs_per_loop" not in cells:
        return None
    timed = cells[(cells["status"] == "ok") & cells["jobs_per_loop"].notna()]
    if "reused_from" in timed:  # a reused cell is its source's window, listed once
        timed = timed[timed["reused_from"] == ""]
    params = [c for c in timed.columns if c.startswith("params.")]
    rows = []
    for _, group in timed.groupby("key", sort=False):
        raw = relative_spread(group["jobs_per_s"].dropna().tolist())
        steady = relative_spread(group["jobs_per_loop"].dropna().tolist())
        if raw is None or steady is None:
            continue
        first = group.iloc[0]
        rows.append({"scenario": first["scenario"], "backend": first["backend"],
                     "point": describe_params({p.removeprefix("params."): first[p] for p in params},
                                              hide=("slots", "window_s")), "rounds": len(group),
                     "probe_min": float(group["probe_us"].min()),
                     "probe_max": float(group["probe_us"].max()),
                     "raw": raw, "steady": steady})
    if not rows:
        return None
    rows.sort(key=lambda r: (r["scenario"], backend_rank(r["backend"]), r["point"]))
    probe = timed["probe_us"]
    return {"rows": rows, "probe_min": float(probe.min()), "probe_max": float(probe.max()),
            "settings": data.run.get("speed_probe") or {}}
