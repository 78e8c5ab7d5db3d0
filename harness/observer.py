"""The observer effect: how much the harness's own records slow a backend down.

Each broker-backed backend drains the same preloaded batch of noop jobs
(8 slots) instrumented, as in a run, and bare (QB_BARE: no records, only a
per-process count of finished jobs, core.jobcount). Both rates come from
the driver's own clock: jobs / (the moment the driver saw the last job end
- the moment the gate opened). Pairs run back to back, in ABBA order over
repeats, so machine drift cancels; effect = 1 - instrumented / bare, the
median over repeats. Instrumented calibration cells, not counted, warm the
broker and size the batch to about `drain_s` seconds of work: the first
sends CALIBRATION_JOBS, and one that drained in under CALIBRATION_S is
repeated with a batch sized from its rate (a fast ceiling drains the first
batch in a few milliseconds, mostly start-up, whose rate would size every
later drain far too short).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from adapters import BACKENDS
from core.protocol import DriverReport
from harness.runner import Runner
from scenarios.base import CellFailed, CellPlan

LIBRARY_LIMIT = 0.05  # the goal for a library backend
CEILING_LIMIT = 0.10  # and for a raw ceiling, whose jobs are the cheapest
CALIBRATION_JOBS = 2000
CALIBRATION_S = 0.5
MIN_JOBS, MAX_JOBS = 500, 1_000_000


@dataclass(frozen=True)
class ObserverSettings:
    repeats: int = 3
    drain_s: float = 2.0  # seconds of work per cell at the calibrated rate


QUICK = ObserverSettings(repeats=1, drain_s=1.0)


class Probe:
    """A pseudo-scenario the self-test runs through the Runner: planned and
    analysed by the self-test itself, bound as planned."""

    name = "probe"

    def resolve(self, plan: CellPlan, finished: list[dict[str, Any]], round_no: int
                ) -> CellPlan:
        return plan


class ObserverProbe(Probe):
    """One preloaded noop batch, its drain rate from the driver's report."""

    name = "observer-probe"
    description = "drain rate of a noop batch, instrumented or bare"

    def cell(self, backend: str, jobs: int, bare: bool, processes: int | None = None
             ) -> CellPlan:
        phase = {"type": "batch", "jobs": jobs, "preload": True, "time_limit_s": 120}
        options: dict[str, Any] = {"bare": True} if bare else {}
        if processes is not None:
            options["processes"] = processes
        return CellPlan(scenario=self.name, backend=backend, params={"bare": bare, "jobs": jobs},
                        workload={"spec": {"kind": "noop", "ms": 0}, "phases": [phase]},
                        timeout_s=300, options=options)

    def analyze(self, plan: CellPlan, records: pd.DataFrame, meta: DriverReport
                ) -> dict[str, Any]:
        done_ns = meta.phases[0].done_ns if meta.phases else None
        if meta.timed_out or done_ns is None or meta.ready_ns is None:
            raise CellFailed(f"the batch did not drain ({meta.ended} of {meta.expected} ended)")
        return {"jobs_per_s": meta.expected / max((done_ns - meta.ready_ns) / 1e9, 1e-6)}


def is_ceiling(backend: str) -> bool:
    return any(info.ceiling == backend for info in BACKENDS.values())


def broker_backed(backends: list[str]) -> list[str]:
    return [b for b in backends if BACKENDS[b].broker is not None]


class ObserverMeasurement:
    """Runs the cells of every backend and keeps each backend's verdict."""

    def __init__(self, runner: Runner, settings: ObserverSettings) -> None:
        self.runner = runner
        self.settings = settings
        self.probe = ObserverProbe()
        runner.scenarios[self.probe.name] = self.probe

    def _rate(self, backend: str, jobs: int, bare: bool) -> float:
        result = self.runner.run_cell(1, self.probe.cell(backend, jobs, bare))
        self.runner.writer.add(result)
        if result["status"] != "ok":
            raise CellFailed(f"{'bare' if bare else 'instrumented'} cell {result['status']}: "
                             f"{result['reason']}")
        return float(result["metrics"]["jobs_per_s"])

    def _batch_size(self, backend: str) -> int:
        """Jobs in about `drain_s` seconds of this backend's instrumented drain."""
        calibration = CALIBRATION_JOBS
        while True:
            rate = self._rate(backend, calibration, bare=False)
            if calibration / rate >= CALIBRATION_S or calibration >= MAX_JOBS:
                break
            calibration = min(MAX_JOBS, int(rate * CALIBRATION_S * 2))
        return int(min(MAX_JOBS, max(MIN_JOBS, rate * self.settings.drain_s)))

    def measure(self, backend: str) -> dict[str, Any]:
        """One backend's figures: rates, effect and the goal it is held to."""
        limit = CEILING_LIMIT if is_ceiling(backend) else LIBRARY_LIMIT
        try:
            jobs = self._batch_size(backend)
            instrumented, bare = [], []
            for repeat in range(self.settings.repeats):
                order = (False, True) if repeat % 2 == 0 else (True, False)  # ABBA
                rates = {mode: self._rate(backend, jobs, mode) for mode in order}
                instrumented.append(rates[False])
                bare.append(rates[True])
        except CellFailed as exc:
            return {"status": "failed", "reason": str(exc), "limit": limit}
        effect = statistics.median(1 - i / b for i, b in zip(instrumented, bare, strict=True))
        return {"status": "ok", "jobs": jobs, "instrumented_per_s": instrumented,
                "bare_per_s": bare, "effect": effect, "limit": limit,
                "passed": bool(effect <= limit)}


def observer_file(results: dict[str, dict[str, Any]], settings: ObserverSettings
                  ) -> dict[str, Any]:
    """What observer.json holds: the date, the settings and each backend's figures."""
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"),
            "repeats": settings.repeats, "drain_s": settings.drain_s, "backends": results}


def render_observer(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    for backend, row in results.items():
        if row["status"] != "ok":
            lines.append(f"{backend:18} observer effect not measured: {row['reason']}")
            continue
        verdict = "ok" if row["passed"] else "ABOVE GOAL"
        lines.append(
            f"{backend:18} observer effect {row['effect']:+.1%} (goal <= {row['limit']:.0%}, "
            f"{verdict}): instrumented {statistics.median(row['instrumented_per_s']):,.0f} "
            f"vs bare {statistics.median(row['bare_per_s']):,.0f} jobs/s, {row['jobs']} jobs")
    return lines
