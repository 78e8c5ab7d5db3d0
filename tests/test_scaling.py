"""The scaling scenario: its plan, per-cell slots through the runner, its analysis on known
records, linear efficiency over aggregates, the report's section and the workers claim."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from core.results import RunWriter
from harness.ceiling_layout import fitted, with_layout
from harness.runner import RunConfig, Runner
from reports import render
from reports.claims import FAILS, HOLDS, evaluate, load_claims
from reports.data import load
from scenarios.base import CellPlan, CellReused, RunOptions
from scenarios.scaling import SCALING, rises_up_to, with_linear_efficiency
from tests.test_scenario_declarations import scaling_cases


def test_quick_plan_is_a_small_sweep_with_its_own_slots() -> None:
    cells = SCALING.plan("celery-redis", RunOptions(quick=True))
    assert [(c.slots, c.params["duration_ms"]) for c in cells] == [
        (1, 0), (1, 10), (4, 0), (4, 10), (16, 0), (16, 10)]
    assert all(c.params["slots"] == c.slots and c.params["window_s"] == 2.0 for c in cells)
    full = SCALING.plan("celery-redis", RunOptions())
    assert sorted({c.slots for c in full}) == [1, 2, 4, 8, 16, 32]
    swept = SCALING.plan("rq", RunOptions(slots_sweep=(3, 6)))
    assert [c.slots for c in swept] == [3, 3, 6, 6]


def test_analysis_adds_per_slot_rate_and_efficiency_to_the_throughput_figures() -> None:
    by_point = {(p.slots, p.params["duration_ms"]): SCALING.analyze(p, r, m)
                for p, r, m in scaling_cases()}
    ten_ms = by_point[(4, 10)]
    assert ten_ms["jobs_per_s"] == pytest.approx(100.0)
    assert ten_ms["ideal_jobs_per_s"] == pytest.approx(400.0)
    assert ten_ms["efficiency"] == pytest.approx(0.25)
    assert ten_ms["per_slot_jobs_per_s"] == pytest.approx(25.0)
    assert by_point[(4, 0)]["efficiency"] is None  # noop: no ideal
    assert by_point[(1, 0)]["cpu_count"] >= 1


def test_the_point_at_the_run_slots_reuses_the_throughput_cell() -> None:
    plan = next(c for c in SCALING.plan("rq", RunOptions(quick=True, slots_sweep=(8,)))
                if c.params["duration_ms"] == 10)
    source = {"scenario": "throughput", "backend": "rq", "round": 1, "profile": "default",
              "status": "ok", "cell_dir": "cells/0001", "settings": {},
              "params": {"duration_ms": 10, "slots": 8, "window_s": 2.0},
              "metrics": {"jobs_per_s": 400.0}}
    with pytest.raises(CellReused) as reused:
        SCALING.resolve(plan, [source], 1)
    assert reused.value.source["metrics"]["per_slot_jobs_per_s"] == 50.0
    assert SCALING.resolve(plan, [{**source, "round": 2}], 1) is plan


def test_cells_with_other_slot_counts_never_share_workers() -> None:
    runner = Runner.__new__(Runner)
    runner.config = RunConfig(["scaling"], ["rq"], 1, Path("/nonexistent"), RunOptions())
    cells = SCALING.plan("rq", RunOptions(quick=True))
    groups = runner.groups([(1, c) for c in cells])
    assert [[c.slots for c in group] for _, group in groups] == [[1, 1], [4, 4], [16, 16]]
    assert runner._slots(cells[0]) == 1
    assert runner._slots(CellPlan("throughput", "rq", {}, {}, 1.0)) == 8


def test_a_ceiling_at_other_slots_gets_a_process_count_that_divides_them() -> None:
    assert fitted(2, None) == 2
    assert fitted(2, 1) == 1
    assert fitted(4, 6) == 3
    assert fitted(8, 32) == 8
    layouts = {"redis-raw": {"sweep": {1: 1.0, 2: 2.0, 4: 3.0}, "processes": 4}}
    cell = SCALING.plan("redis-raw", RunOptions(slots_sweep=(2,)))[0]
    assert with_layout(cell, layouts).options["processes"] == 2


def test_rises_up_to_stops_at_the_first_step_that_adds_too_little() -> None:
    assert rises_up_to([(1, 100), (2, 190), (4, 380)]) == 4
    assert rises_up_to([(4, 380), (1, 100), (2, 190), (8, 400)]) == 4
    assert rises_up_to([(1, 100), (2, 105)]) == 1


def aggregates(rates: dict[str, dict[int, float]], duration: float = 10) -> pd.DataFrame:
    rows = [{"series": b, "backend": b, "status": "ok", "params.duration_ms": duration,
             "params.slots": s, "jobs_per_s": r}
            for b, points in rates.items() for s, r in points.items()]
    return pd.DataFrame(rows)


def test_linear_efficiency_is_per_slot_rate_over_the_smallest_points() -> None:
    frame = with_linear_efficiency(aggregates({"a": {1: 100, 4: 300, 16: 400},
                                               "b": {2: 50, 4: 100}}))
    got = dict(zip(zip(frame["series"], frame["params.slots"], strict=True),
                   frame["linear_efficiency"], strict=True))
    assert got[("a", 1)] == pytest.approx(1.0)
    assert got[("a", 4)] == pytest.approx(0.75)
    assert got[("a", 16)] == pytest.approx(0.25)
    assert got[("b", 4)] == pytest.approx(1.0)  # b's smallest point is 2 slots


def scaling_run(path: Path, rates: dict[str, dict[int, float]]) -> Path:
    writer = RunWriter(path, {"id": path.name, "complete": True, "cpu_count": 2,
                              "config": {"scenarios": ["scaling"], "backends": list(rates)}})
    for backend, points in rates.items():
        for slots, rate in points.items():
            for duration in (0, 10):
                writer.add({"scenario": "scaling", "backend": backend, "profile": "default",
                            "params": {"duration_ms": duration, "slots": slots,
                                       "window_s": 2.0},
                            "round": 1, "status": "ok", "reason": None, "settings": {},
                            "metrics": {"jobs_per_s": rate, "cpu_count": 2,
                                        "per_slot_jobs_per_s": rate / slots,
                                        "efficiency": rate * duration / 1000 / slots
                                        if duration else None}})
    writer.finish(complete=True)
    return path


def test_the_workers_claim_holds_only_where_jobs_per_s_keep_rising(tmp_path: Path) -> None:
    run = scaling_run(tmp_path / "run", {"redis-raw": {1: 95, 4: 340, 16: 1260},
                                         "rq": {1: 90, 4: 300, 16: 310}})
    claim = next(c for c in load_claims() if c["id"] == "start-more-workers")
    result = evaluate(claim, load(run))
    verdicts = {f.subject: f for f in result.findings}
    assert verdicts["redis-raw"].verdict == HOLDS
    assert verdicts["rq"].verdict == FAILS
    assert "rise up to 4 slots" in verdicts["rq"].figure
    assert "2 CPUs" in verdicts["rq"].figure


def test_the_report_has_a_scaling_section_and_chart(tmp_path: Path) -> None:
    run = scaling_run(tmp_path / "run", {"redis-raw": {1: 95, 4: 340, 16: 1260}})
    page = render(run).read_text()
    assert "Scaling: completed jobs/s by slots, 10 ms jobs" in page
    assert "1,260/s  (79% of ideal, 83% of linear)" in page
    assert (run / "charts" / "scaling_vs_slots.png").stat().st_size > 0
