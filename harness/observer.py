"""The observer effect: how much the harness's own records slow a backend down.

Each broker-backed backend drains a preloaded batch of noop jobs (8 slots)
while the driver switches the record mode every segment, in ABBA order
(harness/driver/alternate.py): instrumented segments run as in a run, bare
ones write no records and only bump a per-process count (core.jobcount).
Jobs per segment are the bare counts plus the END records inside it; per
group of four segments, effect = 1 - instrumented rate / bare rate. The
first group (start-up) and the group that holds the drain's tail are left
out; the figure is the median over the groups of every repeat.

Drains timed one after the other (the method before) differed by what the
machine did in between as much as by the records, about +-20% for a
library's 2 s drain here; segments a fifth of a second apart share it.
Instrumented calibration cells, not counted, warm the broker and size the
batch: the first sends CALIBRATION_JOBS, and one that drained in under
CALIBRATION_S is repeated with a batch sized from its rate (a fast ceiling
drains the first batch in a few milliseconds, mostly start-up). A segment
lasts SEGMENT_S, or long enough for MIN_SEGMENT_JOBS jobs of a slow
backend, so one job more or less does not move its rate much, and two polls
of a backend whose busy workers take jobs only on a timer (backend.toml
`poll_s`: arq's 0.5 s poll_delay made its 0.25 s segments catch a burst or
none, -23% to +51% from one group to the next).
"""

from __future__ import annotations

import statistics
from bisect import bisect_left
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from adapters import BACKENDS, CEILINGS
from core.numbers import median_interval
from core.protocol import DriverReport
from core.recorder import Event
from harness.runner import Runner
from reports.observer import group_interval, interval_text
from scenarios.base import CellFailed, CellPlan

LIBRARY_LIMIT = 0.05  # the goal for a library backend
CEILING_LIMIT = 0.10  # and for a raw ceiling, whose jobs are the cheapest
CALIBRATION_JOBS = 2000
CALIBRATION_S = 0.5
MAX_JOBS = 4_000_000  # a batch holds at most this many (about 620 MB of 64 B jobs in Redis)
SEGMENT_S = 0.2
MIN_SEGMENT_JOBS = 100
GROUP = 4  # segments per ABBA group
# the batch holds this many times the segments' work at the calibrated rate: a drain
# that runs faster than its calibration still has its groups (pgqueuer had 5 of 15)
BATCH_MARGIN = 1.5


@dataclass(frozen=True)
class ObserverSettings:
    repeats: int = 3  # alternating drains per backend
    segments: int = 20  # per drain at least (5 ABBA groups, 3 counted)


QUICK = ObserverSettings(repeats=1, segments=16)


def segment_s(rate: float, poll_s: float | None = None) -> float:
    """How long one segment lasts for a backend that drains `rate` jobs/s and takes new
    jobs only every `poll_s` (arq): two polls, or a segment would catch a burst or none."""
    return max(SEGMENT_S, MIN_SEGMENT_JOBS / rate, 2 * (poll_s or 0.0))


def group_effects(segments: list[list[int]], end_times_ns: list[int]) -> list[dict[str, float]]:
    """Per complete ABBA group, the instrumented and bare rates and the effect.

    `segments` are the driver's [start_ns, end_ns, bare, counted]; a segment's
    jobs are its bare count plus the END records (`end_times_ns`) inside it.
    Left out: the first group (workers and broker warming up) and the group of
    the last segment, which ends when the batch runs out (its rate falls as
    consumers go idle)."""
    ends = sorted(end_times_ns)
    jobs = [counted + bisect_left(ends, end) - bisect_left(ends, start)
            for start, end, _bare, counted in segments]
    groups = []
    for first in range(GROUP, len(segments) - GROUP, GROUP):  # ends before the last segment
        mode_jobs = {0: 0, 1: 0}
        mode_ns = {0: 0, 1: 0}
        for index in range(first, first + GROUP):
            start, end, bare, _ = segments[index]
            mode_jobs[bare] += jobs[index]
            mode_ns[bare] += end - start
        if not (mode_ns[0] and mode_ns[1] and mode_jobs[1]):
            continue
        instrumented = mode_jobs[0] / mode_ns[0] * 1e9
        bare_rate = mode_jobs[1] / mode_ns[1] * 1e9
        groups.append({"instrumented_per_s": instrumented, "bare_per_s": bare_rate,
                       "effect": 1 - instrumented / bare_rate})
    return groups


class Probe:
    """A pseudo-scenario the self-test runs through the Runner: planned and
    analysed by the self-test itself, bound as planned."""

    name = "probe"
    handoff_options: tuple[str, ...] = ()  # as Scenario's: none of its options is a setting

    def resolve(self, plan: CellPlan, finished: list[dict[str, Any]], round_no: int
                ) -> CellPlan:
        return plan


class ObserverProbe(Probe):
    """One preloaded noop batch: its drain rate from the driver's report, and when its
    record mode alternates, the rates and effect of each ABBA group."""

    name = "observer-probe"
    description = "drain rate of a noop batch, instrumented, bare or alternating"

    def cell(self, backend: str, jobs: int, bare: bool = False, processes: int | None = None,
             alternate_s: float | None = None) -> CellPlan:
        phase: dict[str, Any] = {"type": "batch", "jobs": jobs, "preload": True,
                                 "time_limit_s": 120}
        if alternate_s:
            phase["alternate_s"] = alternate_s
        options: dict[str, Any] = {"bare": True} if bare else {}
        if processes is not None:
            options["processes"] = processes
        return CellPlan(scenario=self.name, backend=backend,
                        params={"bare": bare, "jobs": jobs, "alternate_s": alternate_s},
                        workload={"spec": {"kind": "noop", "ms": 0}, "phases": [phase]},
                        timeout_s=300, options=options)

    def analyze(self, plan: CellPlan, records: pd.DataFrame, meta: DriverReport
                ) -> dict[str, Any]:
        phase = meta.phases[0] if meta.phases else None
        done_ns = phase.done_ns if phase else None
        if meta.timed_out or done_ns is None or meta.ready_ns is None:
            raise CellFailed(f"the batch did not drain ({meta.ended} of {meta.expected} ended)")
        metrics: dict[str, Any] = {
            "jobs_per_s": meta.expected / max((done_ns - meta.ready_ns) / 1e9, 1e-6),
            "drain_ns": [meta.ready_ns, done_ns]}  # matched to the speed meter's samples
        if phase is not None and phase.window_cpu_s is not None and meta.expected:
            metrics["cpu_us_per_job"] = phase.window_cpu_s * 1e6 / meta.expected
        if phase is not None and phase.segments:
            ends = records.loc[records["event"] == Event.END, "t_ns"] if len(records) else []
            metrics["groups"] = group_effects(phase.segments, [int(t) for t in ends])
        return metrics


def is_ceiling(backend: str) -> bool:
    return backend in CEILINGS


def broker_backed(backends: list[str]) -> list[str]:
    return [b for b in backends if BACKENDS[b].broker is not None]


class ObserverMeasurement:
    """Runs the cells of every backend and keeps each backend's verdict."""

    def __init__(self, runner: Runner, settings: ObserverSettings) -> None:
        self.runner = runner
        self.settings = settings
        self.probe = ObserverProbe()
        runner.scenarios[self.probe.name] = self.probe

    def _cell(self, plan: CellPlan) -> dict[str, Any]:
        result = self.runner.run_cell(1, plan)
        self.runner.writer.add(result)
        if result["status"] != "ok":
            raise CellFailed(f"{plan.params} cell {result['status']}: {result['reason']}")
        return result["metrics"]

    def _calibrated_rate(self, backend: str) -> float:
        """Instrumented jobs/s from a drain long enough to time (see the module doc)."""
        jobs = CALIBRATION_JOBS
        while True:
            rate = float(self._cell(self.probe.cell(backend, jobs))["jobs_per_s"])
            if jobs / rate >= CALIBRATION_S or jobs >= MAX_JOBS:
                return rate
            jobs = min(MAX_JOBS, int(rate * CALIBRATION_S * 2))

    def _groups(self, backend: str, jobs: int, segment: float) -> list[dict[str, float]]:
        """The ABBA groups of one alternating drain of `jobs` (none: it drained too soon;
        a fast ceiling drains its calibrated batch faster in bare segments than the
        calibration's instrumented drain did: redis-raw at 500,000 jobs/s here)."""
        return self._cell(self.probe.cell(backend, jobs, alternate_s=segment)).get("groups", [])

    def measure(self, backend: str) -> dict[str, Any]:
        """One backend's figures: rates, effect and the goal it is held to."""
        limit = CEILING_LIMIT if is_ceiling(backend) else LIBRARY_LIMIT
        try:
            rate = self._calibrated_rate(backend)
            segment = segment_s(rate, BACKENDS[backend].poll_s)
            jobs = int(min(MAX_JOBS, rate * segment * self.settings.segments * BATCH_MARGIN))
            groups = []
            for _ in range(self.settings.repeats):
                while not (found := self._groups(backend, jobs, segment)) and jobs < MAX_JOBS:
                    jobs = min(MAX_JOBS, jobs * 2)  # drained faster than calibrated: larger
                groups += found
        except CellFailed as exc:
            return {"status": "failed", "reason": str(exc), "limit": limit}
        if not groups:
            return {"status": "failed", "limit": limit,
                    "reason": "no complete group of segments (the batch drained too soon)"}
        effects = [g["effect"] for g in groups]
        effect = statistics.median(effects)
        return {"status": "ok", "jobs": jobs, "segment_s": round(segment, 3),
                "groups": len(groups), "effect_range": [min(effects), max(effects)],
                "effect_interval": median_interval(effects),
                "instrumented_per_s": [g["instrumented_per_s"] for g in groups],
                "bare_per_s": [g["bare_per_s"] for g in groups], "effect": effect,
                "limit": limit, "passed": bool(effect <= limit)}


def observer_file(results: dict[str, dict[str, Any]], settings: ObserverSettings
                  ) -> dict[str, Any]:
    """What observer.json holds: the date, the settings and each backend's figures."""
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"),
            "method": "alternating ABBA segments within each drain",
            "repeats": settings.repeats, "segments": settings.segments, "backends": results}


def interval_words(row: dict[str, Any]) -> str:
    """'95% CI +6.1% to +13.2% (the goal is inside it)': the run cannot tell the cost
    from the goal then."""
    interval = group_interval(row)
    if interval is None:
        return "too few groups for a 95% CI"
    inside = " (the goal is inside it)" if interval[0] <= row["limit"] <= interval[1] else ""
    return f"95% CI {interval_text(row)}{inside}"


def render_observer(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    for backend, row in results.items():
        if row["status"] != "ok":
            lines.append(f"{backend:18} observer effect not measured: {row['reason']}")
            continue
        verdict = "ok" if row["passed"] else "ABOVE GOAL"
        lines.append(
            f"{backend:18} observer effect {row['effect']:+.1%} ({interval_words(row)}; goal "
            f"<= {row['limit']:.0%}, {verdict}; {row['groups']} groups "
            f"{row['effect_range'][0]:+.1%} to "
            f"{row['effect_range'][1]:+.1%}): instrumented "
            f"{statistics.median(row['instrumented_per_s']):,.0f} vs bare "
            f"{statistics.median(row['bare_per_s']):,.0f} jobs/s, {row['jobs']:,} jobs in "
            f"{row['segment_s']} s segments")
    return lines
