"""Per-job outcome of a crash cell, counted from the raw records only.

Definitions (every expected job falls in exactly one of lost, late, once,
duplicated, so the four add up to the cell's jobs):

- window: records up to `window_end_ns`; the late watch: records up to
  `late_end_ns` (the driver watches missing jobs that much longer); later
  records are ignored.
- lost: the job has no END record by the end of the late watch (it may have
  started, even twice, or ended with ERROR): it will not run, as no
  re-delivery exists, or it was parked as failed, or its re-delivery takes
  longer than the window plus the late watch.
- late: no END in the window, an END in the late watch: re-delivered, but
  after the window.
- duplicated: an END in the window, and more than one START or more than one
  END. A job whose first run was killed mid-way and that a new worker re-ran
  is duplicated: it started twice, so its side effects may have happened twice.
- once: an END in the window, exactly one START and one END.
- completed = once + duplicated (ended in the window).
- affected: the jobs the fault hit: those running on a killed process at the
  kill (worker faults; every job running at the kill for a broker kill), and
  those queued at the kill (not started yet).
- recovery_s.first: kill -> the first END of an affected job; recovery_s.last:
  kill -> the last one (the late watch included); recovery_s.rerun: kill ->
  the first END of a job that was running on a killed process, which only a
  re-delivery gives. None when no such END came.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from core.recorder import Event


def _per_job(rows: pd.DataFrame, event: Event, ids: pd.Index) -> pd.Series:
    return rows[rows["event"] == int(event)].groupby("job_id").size().reindex(ids, fill_value=0)


def _seconds(t_ns: float | None, kill_ns: int) -> float | None:
    return None if t_ns is None or pd.isna(t_ns) else (int(t_ns) - kill_ns) / 1e9


def classify(records: pd.DataFrame, expected_ids: Iterable[int], kill_ns: int,
             window_end_ns: int, *, late_end_ns: int | None = None,
             killed_pids: Iterable[int] = ()) -> dict[str, Any]:
    """Count the lost, late, once-only and duplicated jobs of one crash cell (module doc)."""
    ids = pd.Index(sorted(set(expected_ids)), name="job_id")
    late_end = max(window_end_ns, late_end_ns or window_end_ns)
    watched = records[(records["t_ns"] <= late_end) & records["job_id"].isin(ids)]
    rows = watched[watched["t_ns"] <= window_end_ns]
    starts = _per_job(rows, Event.START, ids)
    ends = _per_job(rows, Event.END, ids)
    errors = _per_job(rows, Event.ERROR, ids)
    all_ends = watched[watched["event"] == int(Event.END)]
    first_end = all_ends.groupby("job_id")["t_ns"].min().reindex(ids)
    start_rows = rows[rows["event"] == int(Event.START)]
    before_kill = start_rows[start_rows["t_ns"] < kill_ns]

    ended_before = first_end < kill_ns
    in_window = ends > 0
    late = ~in_window & first_end.notna()
    lost = first_end.isna()
    duplicated = in_window & ((starts > 1) | (ends > 1))
    done_before = set(first_end[ended_before].index)
    in_flight = set(before_kill["job_id"]) - done_before
    killed = {int(pid) for pid in killed_pids}
    on_killed = set(before_kill.loc[before_kill["pid"].isin(killed), "job_id"]) - done_before
    queued = set(ids) - set(before_kill["job_id"])
    affected = sorted((on_killed if killed else in_flight) | queued)
    after = all_ends[(all_ends["t_ns"] > kill_ns) & all_ends["job_id"].isin(affected)]
    reruns = after[after["job_id"].isin(on_killed)]
    return {
        "jobs": len(ids),
        "completed": int(in_window.sum()),
        "once": int((in_window & ~duplicated).sum()),
        "lost": int(lost.sum()),
        "late": int(late.sum()),
        "duplicated": int(duplicated.sum()),
        "started_twice": int((starts > 1).sum()),
        "ended_twice": int((ends > 1).sum()),
        "errors": int((errors > 0).sum()),
        "ended_before_kill": int(ended_before.sum()),
        "in_flight_at_kill": len(in_flight),
        "in_flight_on_killed": len(on_killed),
        "lost_in_flight_on_killed": int(lost[sorted(on_killed)].sum()) if on_killed else 0,
        "lost_never_started": int((lost & (starts == 0)).sum()),
        "recovery_s": {
            "first": _seconds(after["t_ns"].min() if len(after) else None, kill_ns),
            "last": _seconds(after["t_ns"].max() if len(after) else None, kill_ns),
            "rerun": _seconds(reruns["t_ns"].min() if len(reruns) else None, kill_ns),
        },
    }
