"""Throughput by job duration at equal total slots.

Jobs (sleep of 0, 1, 10, 100 ms) are enqueued before the workers start, so
the enqueue rate and the drain rate are measured apart; a cell is
time-boxed (about T seconds of work or N jobs, whichever comes first) and
its first 10% of completions are a warm-up that is not counted.
efficiency = jobs_per_s / (slots / duration): 1.0 is the ideal.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from scenarios.base import CellPlan, RunOptions
from scenarios.common import drain_per_s, enqueue_per_s, job_counts

DURATIONS_MS = (0, 1, 10, 100)
QUICK_DURATIONS_MS = (0, 10)  # --quick: the noop ceiling and one real job size


def preloaded_batch(duration_ms: float, options: RunOptions) -> tuple[int, dict[str, Any], float]:
    """(jobs, workload, time limit) of a time-boxed preloaded batch of jobs.

    About `work_s` seconds of work for an ideal backend, or N jobs; the
    preload stops after `work_s` seconds of enqueueing too, so a slow
    producer API does not stretch the cell. The latency scenario's `max`
    cell is this batch with noop jobs, which lets it reuse a throughput cell.
    """
    work_s = 1.5 if options.quick else 5.0
    noop_jobs = 2000 if options.quick else 10000
    if duration_ms == 0:
        jobs = noop_jobs
        spec = {"kind": "noop", "ms": 0}
    else:
        jobs = min(noop_jobs, math.ceil(options.slots * work_s * 1000 / duration_ms))
        spec = {"kind": "sleep", "ms": duration_ms}
    limit = work_s + 1  # from the moment every worker is ready
    phase = {"type": "batch", "jobs": jobs, "preload": True, "enqueue_limit_s": work_s,
             "time_limit_s": limit}
    return jobs, {"spec": spec, "phases": [phase]}, limit


class Throughput:
    name = "throughput"
    description = "jobs/s by job duration (0, 1, 10, 100 ms sleep) at equal slots"

    def plan(self, backend: str, options: RunOptions) -> list[CellPlan]:
        durations = options.durations_ms or (QUICK_DURATIONS_MS if options.quick else DURATIONS_MS)
        cells = []
        for duration in durations:
            jobs, workload, limit = preloaded_batch(duration, options)
            cells.append(CellPlan(
                scenario=self.name, backend=backend,
                params={"duration_ms": duration, "slots": options.slots, "jobs": jobs},
                workload=workload, timeout_s=limit + 90, profile=options.profile,
            ))
        return cells

    def analyze(self, plan: CellPlan, records: pd.DataFrame, meta: dict[str, Any]
                ) -> dict[str, Any]:
        rate = drain_per_s(records, meta)
        duration_ms = plan.params["duration_ms"]
        ideal = plan.params["slots"] / (duration_ms / 1000) if duration_ms else None
        return {
            "jobs_per_s": rate["jobs_per_s"],
            "enqueue_per_s": enqueue_per_s(records),
            "efficiency": rate["jobs_per_s"] / ideal if ideal else None,
            "ideal_jobs_per_s": ideal,
            "window_s": rate["window_s"],
            **job_counts(records),
            "timed_out": bool(meta.get("timed_out", False)),
        }


THROUGHPUT = Throughput()
