"""Per-job outcome of a crash cell, counted from the raw records only.

Definitions (every expected job falls in exactly one of lost, once, duplicated):

- window: records up to `window_end_ns`; later records are ignored.
- lost: the job has no END record in the window (it may have started, even
  twice, or ended with ERROR). A job that ended before the kill is never lost.
- duplicated: the job has an END, and more than one START or more than one
  END. A job whose first run was killed mid-way and that a new worker re-ran
  is duplicated: it started twice, so its side effects may have happened twice.
- once: exactly one START and one END.
- completed = once + duplicated (ended at least once).
- recovery_s.first: kill -> the first END after the kill that shows the
  system recovering: written by a process that was not alive before the kill
  (a new worker; a pid that wrote a record before the kill, or is listed in
  `old_pids`, was alive), or ending a re-run (the job's second or later
  START), or ending a run that STARTed after `back_ns` (broker kill: the
  broker was back). None when nothing after the kill shows recovery.
- recovery_s.last: kill -> the last END in the window after the kill, re-runs
  and duplicates included: how long the backlog, the re-runs and the
  duplicates took to drain. None when no job ended after the kill.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from core.recorder import Event


def _per_job(rows: pd.DataFrame, event: Event, ids: pd.Index) -> pd.Series:
    return rows[rows["event"] == int(event)].groupby("job_id").size().reindex(ids, fill_value=0)


def _first_recovery_end(rows: pd.DataFrame, kill_ns: int, old: set[int],
                        back_ns: int | None) -> int | None:
    """Earliest END after the kill that shows recovery (module doc, recovery_s.first)."""
    starts = rows[rows["event"] == int(Event.START)]
    ends = rows[(rows["event"] == int(Event.END)) & (rows["t_ns"] > kill_ns)]
    for end in ends.sort_values("t_ns", kind="stable").itertuples():
        if int(end.pid) not in old:
            return int(end.t_ns)
        before = starts[(starts["job_id"] == end.job_id) & (starts["t_ns"] <= end.t_ns)]
        if len(before) > 1:
            return int(end.t_ns)
        mine = before[before["pid"] == end.pid]
        if back_ns is not None and len(mine) and int(mine["t_ns"].max()) >= back_ns:
            return int(end.t_ns)
    return None


def classify(records: pd.DataFrame, expected_ids: Iterable[int], kill_ns: int,
             window_end_ns: int, *, old_pids: Iterable[int] = (), back_ns: int | None = None,
             killed_pid: int | None = None) -> dict[str, Any]:
    """Count lost, duplicated and once-only jobs of one crash cell (see module doc)."""
    ids = pd.Index(sorted(set(expected_ids)), name="job_id")
    rows = records[(records["t_ns"] <= window_end_ns) & records["job_id"].isin(ids)]
    starts = _per_job(rows, Event.START, ids)
    ends = _per_job(rows, Event.END, ids)
    errors = _per_job(rows, Event.ERROR, ids)
    end_rows = rows[rows["event"] == int(Event.END)]
    first_end = end_rows.groupby("job_id")["t_ns"].min().reindex(ids)
    start_rows = rows[rows["event"] == int(Event.START)]
    started_before = set(start_rows.loc[start_rows["t_ns"] < kill_ns, "job_id"])

    lost = ends == 0
    duplicated = ~lost & ((starts > 1) | (ends > 1))
    ended_before = first_end < kill_ns
    in_flight = ids.isin(list(started_before)) & ~ended_before.to_numpy()
    on_killed = set()
    if killed_pid is not None:
        mine = start_rows[(start_rows["pid"] == killed_pid) & (start_rows["t_ns"] < kill_ns)]
        on_killed = set(mine["job_id"]) - set(first_end[ended_before].index)
    after = end_rows.loc[end_rows["t_ns"] > kill_ns, "t_ns"]

    old = {int(p) for p in old_pids} | {int(p) for p in rows.loc[rows["t_ns"] < kill_ns, "pid"]}
    first_new = _first_recovery_end(rows, kill_ns, old, back_ns)
    return {
        "jobs": len(ids),
        "completed": int((~lost).sum()),
        "once": int((~lost & ~duplicated).sum()),
        "lost": int(lost.sum()),
        "duplicated": int(duplicated.sum()),
        "started_twice": int((starts > 1).sum()),
        "ended_twice": int((ends > 1).sum()),
        "errors": int((errors > 0).sum()),
        "ended_before_kill": int(ended_before.sum()),
        "in_flight_at_kill": int(in_flight.sum()),
        "in_flight_on_killed": len(on_killed),
        "lost_in_flight_on_killed": int(lost[list(on_killed)].sum()) if on_killed else 0,
        "lost_never_started": int((lost & (starts == 0)).sum()),
        "recovery_s": {
            "first": None if first_new is None else (first_new - kill_ns) / 1e9,
            "last": None if after.empty else (int(after.max()) - kill_ns) / 1e9,
        },
    }
