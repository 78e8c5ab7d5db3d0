"""Record arithmetic shared by scenarios: enqueue rate, drain rate, counts."""

from __future__ import annotations

from typing import Any

import pandas as pd

from core.recorder import Event
from scenarios.base import CellFailed, Metric

WARMUP_FRACTION = 0.1
MIN_JOBS = 20

# The metrics the helpers below emit, declared once for every scenario that uses them.
JOBS_PER_S = Metric("jobs/s", "higher", gated=True,
                    doc="completed jobs per second after the warm-up")
ENQUEUE_PER_S = Metric("jobs/s", "higher", doc="jobs sent per second")
DRAIN_METRICS = {
    "jobs_per_s": JOBS_PER_S,
    "window_s": Metric("s", doc="the counted window"),
    "window_jobs": Metric("jobs", doc="jobs ended in the counted window"),
}
JOB_COUNT_METRICS = {
    "completed": Metric("jobs", doc="distinct jobs that ended"),
    "errors": Metric("jobs", "lower", doc="distinct jobs that failed"),
    "duplicated": Metric("jobs", "lower", doc="jobs started more than once"),
}


def events(records: pd.DataFrame, event: Event) -> pd.DataFrame:
    return records[records["event"] == int(event)]


def enqueue_per_s(records: pd.DataFrame) -> float | None:
    """Jobs sent per second: count / (last SENT - first INTENDED)."""
    sent = events(records, Event.SENT)["t_ns"]
    intended = events(records, Event.INTENDED)["t_ns"]
    if len(sent) < 2 or intended.empty:
        return None
    span = (sent.max() - intended.min()) / 1e9
    return len(sent) / span if span > 0 else None


def drain_per_s(records: pd.DataFrame, meta: dict[str, Any]) -> dict[str, float]:
    """Completed jobs per second after a warm-up that is not counted.

    Jobs wait at a start gate until every worker is ready (adapters/job.py),
    so all workers start together; the window opens when the first 10% of
    the completed jobs had ended (warm-up) and closes at the last END.
    """
    ends = events(records, Event.END)["t_ns"].sort_values().to_numpy()
    if len(ends) < MIN_JOBS:
        raise CellFailed(f"only {len(ends)} jobs ended (at least {MIN_JOBS} needed)")
    skip = max(1, int(len(ends) * WARMUP_FRACTION))
    opened = max(int(meta.get("ready_ns", 0)), int(ends[skip - 1]))
    counted = ends[ends > opened]
    span = (counted[-1] - opened) / 1e9 if len(counted) else 0.0
    if len(counted) < MIN_JOBS // 2 or span <= 0:
        raise CellFailed("too few jobs ended after the warm-up to measure a rate")
    return {"jobs_per_s": len(counted) / span, "window_s": span, "window_jobs": int(len(counted))}


def job_counts(records: pd.DataFrame) -> dict[str, int]:
    """Distinct jobs completed, failed, started more than once."""
    ends = events(records, Event.END)
    starts = events(records, Event.START)
    per_job_starts = starts.groupby("job_id").size()
    return {
        "completed": int(ends["job_id"].nunique()),
        "errors": int(events(records, Event.ERROR)["job_id"].nunique()),
        "duplicated": int((per_job_starts > 1).sum()),
    }
