"""The raw ceilings' consumer layout: which process counts a run sweeps and which it keeps."""

from __future__ import annotations

from typing import Any

from harness.ceiling_layout import (
    fastest,
    needs_sweep,
    sweep,
    sweep_points,
    sweeps,
    with_layout,
)
from scenarios.base import CellPlan, RunOptions


def plan(backend: str, scenario: str = "throughput", **options: Any) -> CellPlan:
    return CellPlan(scenario=scenario, backend=backend, params={}, workload={}, timeout_s=1,
                    options=options)


def test_sweep_points_divide_the_slots() -> None:
    assert sweep_points(8) == [1, 2, 4, 8]
    assert sweep_points(6) == [1, 2, 6]
    assert sweep_points(1) == [1]


def test_sweep_points_start_at_the_cpu_count() -> None:
    assert sweep_points(8, cpu_count=2) == [2, 4, 8]
    assert sweep_points(8, cpu_count=3) == [4, 8]
    assert sweep_points(2, cpu_count=4) == [2]  # never more processes than slots
    assert sweep_points(6, cpu_count=2) == [2, 6]


def test_the_fastest_measured_count_wins_and_failures_do_not() -> None:
    assert fastest({1: 50.0, 2: 80.0, 4: None, 8: 79.0}) == 2
    assert fastest({1: None, 2: None}) is None


def test_a_full_run_sweeps_a_quick_one_only_when_asked() -> None:
    assert sweeps(RunOptions()) and not sweeps(RunOptions(quick=True))
    assert sweeps(RunOptions(quick=True, sweep=True))
    assert not sweeps(RunOptions(sweep=False))


def test_only_ceilings_with_a_speed_cell_and_no_user_count_are_swept() -> None:
    assert needs_sweep("redis-raw", [plan("redis-raw")])
    assert not needs_sweep("celery-redis", [plan("celery-redis")])  # not a layout backend
    assert not needs_sweep("redis-raw", [plan("redis-raw", processes=2)])  # the user chose
    assert not needs_sweep("redis-raw", [plan("redis-raw", "crash-recovery"),
                                         plan("redis-raw", "memory")])


def test_every_cell_of_the_backend_runs_at_the_swept_count_unless_the_user_set_one() -> None:
    layouts = {"redis-raw": {"sweep": {1: 10.0, 2: 30.0}, "processes": 2}}
    swept = with_layout(plan("redis-raw", "crash-recovery"), layouts)
    assert swept.options == {"processes": 2, "layout_sweep": {1: 10.0, 2: 30.0}}
    assert with_layout(plan("redis-raw", processes=8), layouts).options == {"processes": 8}
    assert with_layout(plan("amqp-raw"), layouts).options == {}


def test_sweep_runs_one_short_noop_cell_per_count(monkeypatch) -> None:
    monkeypatch.setattr("harness.ceiling_layout.os.cpu_count", lambda: 1)
    seen: list[CellPlan] = []

    def run_cell(round_no: int, cell: CellPlan) -> dict[str, Any]:
        seen.append(cell)
        processes = cell.options["processes"]
        if processes == 4:
            return {"status": "failed", "reason": "boom", "metrics": {}}
        return {"status": "ok", "metrics": {"jobs_per_s": 1000.0 / processes}}

    rates = sweep(run_cell, "redis-raw", RunOptions(slots=8))
    assert rates == {1: 1000.0, 2: 500.0, 4: None, 8: 125.0}
    assert all(c.params["duration_ms"] == 0 and c.params["window_s"] == 1.0 for c in seen)
    assert all([p["type"] for p in c.workload["phases"]] == ["sustained"] for c in seen)
    seen.clear()
    sweep(run_cell, "redis-raw", RunOptions(slots=8, quick=True))
    assert [c.params["window_s"] for c in seen] == [0.5] * 4  # a quick run's shorter points
