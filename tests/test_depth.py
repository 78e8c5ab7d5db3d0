"""The depth scenario: its plan and caps, its analysis on known records, and the driver's
fill stopping at the memory budget or the enqueue time limit."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from core.protocol import DepthPhase, DriverReport, PhaseReport, Workload
from core.recorder import Event
from harness.driver import depth as driver_depth
from scenarios.base import CellPlan, RunOptions
from scenarios.depth import DEPTH
from tests.test_scenario_declarations import MS, job_rows, records

QUEUED = 1000


def depth_report(**phase: Any) -> DriverReport:
    """1,000 jobs queued in 50 ms with 50 MB of broker memory; a 2 s window from 0.5 s
    with the backlog not yet drained at its end."""
    fields = {"first_id": 0, "preloaded": QUEUED, "load_start_ns": 0, "load_end_ns": 50 * MS,
              "memory_before": {"bytes": 1_000_000, "method": "redis INFO used_memory"},
              "memory_after": {"bytes": 51_000_000, "method": "redis INFO used_memory"},
              "window_start_ns": 500 * MS, "window_end_ns": 2500 * MS,
              "window_min_backlog": 10, **phase}
    return DriverReport(ready_ns=0, phases=[PhaseReport(type="depth", **fields)])


def drain_rows(probe_start_ms: int | None) -> pd.DataFrame:
    """Jobs 0..999 sent at 0 and ending one per 2.5 ms from 0; the probe (id 1000) sent
    at 60 ms and started at `probe_start_ms` (never, if None)."""
    rows = job_rows(range(QUEUED), 0, (Event.INTENDED, Event.SENT))
    rows += [(job, int(Event.END), 0, 100, job * 5 * MS // 2) for job in range(QUEUED)]
    rows += [(QUEUED, int(Event.INTENDED), 0, 100, 60 * MS)]
    if probe_start_ms is not None:
        rows += [(QUEUED, int(Event.START), 0, 100, probe_start_ms * MS)]
    return records(rows)


def depth_cases() -> Iterator[tuple[CellPlan, pd.DataFrame, DriverReport]]:
    for plan in DEPTH.plan("redis-raw", RunOptions(quick=True)):
        yield plan, drain_rows(2560), depth_report()
        yield plan, drain_rows(None), depth_report(unsent=500, unsent_reason="memory budget")


def test_plan_states_its_caps_and_skips_in_process_backends() -> None:
    cells = DEPTH.plan("rq", RunOptions(quick=True))
    assert [c.params["depth"] for c in cells] == [1_000, 10_000]
    full = DEPTH.plan("rq", RunOptions())
    assert [c.params["depth"] for c in full] == [10_000, 100_000, 1_000_000]
    phase = Workload.from_dict(full[-1].workload).phases[0]
    assert isinstance(phase, DepthPhase) and phase.jobs == 1_000_000
    assert phase.max_broker_bytes == 4096 * 1024 * 1024
    assert full[-1].timeout_s > phase.enqueue_limit_s + phase.time_limit_s
    assert DEPTH.plan("asyncio", RunOptions(quick=True)) == []


def test_analysis_of_a_deep_queue_and_its_probe() -> None:
    plan = DEPTH.plan("redis-raw", RunOptions(quick=True))[0]
    got = DEPTH.analyze(plan, drain_rows(2560), depth_report())
    assert got["queued"] == QUEUED and got["capped_by"] is None
    assert got["enqueue_per_s"] == pytest.approx(20_000)
    assert got["bytes_per_job"] == pytest.approx(50_000)
    assert got["jobs_per_s"] == pytest.approx(400, rel=0.01)  # one END per 2.5 ms
    assert got["drained"] is False
    assert got["probe_latency_s"] == pytest.approx(2.5)
    assert got["probe_expected_s"] == pytest.approx(2.5, rel=0.01)
    assert got["time_cap_s"] == 45.0
    assert "queued" in DEPTH.headline(got)


def test_a_capped_depth_says_which_cap_and_an_unreached_probe_is_only_expected() -> None:
    plan = DEPTH.plan("redis-raw", RunOptions(quick=True))[0]
    got = DEPTH.analyze(plan, drain_rows(None), depth_report(unsent=500,
                                                             unsent_reason="memory budget"))
    assert got["capped_by"] == "memory budget"
    assert got["probe_reached"] is False and got["probe_latency_s"] is None
    assert "not reached" in DEPTH.headline(got)


def test_a_drained_backlog_is_counted_up_to_its_last_job() -> None:
    plan = DEPTH.plan("redis-raw", RunOptions(quick=True))[0]
    got = DEPTH.analyze(plan, drain_rows(2560),
                        depth_report(window_start_ns=0, window_end_ns=4000 * MS,
                                     window_min_backlog=0))
    assert got["drained"] is True
    assert got["jobs_per_s"] == pytest.approx(400, rel=0.01)  # not diluted by idle time


class FakeProducer:
    """Sends instantly; `per_call` caps what one send_all call gets out (a slow broker)."""

    def __init__(self, per_call: int | None = None) -> None:
        self.per_call = per_call
        self.sent = 0

    def send_all(self, first_id: int, total: int, report: PhaseReport, want_bulk: bool,
                 limit_s: float | None = None) -> int:
        got = min(total, self.per_call or total)
        self.sent += got
        return got


def fill(monkeypatch: pytest.MonkeyPatch, producer: FakeProducer, **spec: Any
         ) -> PhaseReport:
    """The driver's fill against a broker that grows 1,000 B per job sent."""
    monkeypatch.setattr(driver_depth, "measure_memory",
                        lambda _broker, final=False: {"bytes": 1000 * producer.sent})
    run = SimpleNamespace(producer=producer, workload=SimpleNamespace(bulk=True))
    report = PhaseReport(type="depth", first_id=0, memory_before={"bytes": 0})
    report.preloaded = driver_depth._fill(run, DepthPhase(**spec), report, {})  # type: ignore[arg-type]
    return report


def test_the_fill_stops_before_the_memory_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    report = fill(monkeypatch, FakeProducer(), jobs=10_000, memory_checks=10,
                  max_broker_bytes=4_500_000)
    assert report.preloaded == 4000  # a 5th chunk of 1,000 jobs would pass 4.5 MB
    assert report.unsent == 6000
    assert report.unsent_reason and report.unsent_reason.startswith("memory budget")


def test_the_fill_stops_at_the_enqueue_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    report = fill(monkeypatch, FakeProducer(per_call=300), jobs=10_000, memory_checks=10)
    assert report.preloaded == 300
    assert report.unsent_reason == "enqueue time limit: 60 s"


def test_a_full_fill_has_no_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    report = fill(monkeypatch, FakeProducer(), jobs=10_000, memory_checks=10)
    assert report.preloaded == 10_000 and report.unsent == 0 and report.unsent_reason is None
