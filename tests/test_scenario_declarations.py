"""A scenario declares everything about itself: its metrics cover what analyze() emits,
a metric name means the same in every scenario, the results doc lists the declarations,
and a scenario nobody else knows about shows up in compare and in the report."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from core.protocol import DriverReport, PhaseReport
from core.recorder import Event
from core.results import RunWriter
from harness.cli import main
from harness.compare.metrics import default_metrics, direction_of, unit_of
from reports import render
from reports.data import load
from reports.sections import Kit
from scenarios import SCENARIOS, metrics_markdown
from scenarios.base import CellPlan, Grids, Metric, RunOptions, Scenario
from scenarios.presentation import ReportKit
from scenarios.records import COLUMNS

ROOT = Path(__file__).resolve().parent.parent
MS = 1_000_000
EVERY = (Event.INTENDED, Event.SENT, Event.START, Event.END)


def job_rows(ids: range, t0_ns: int, events: tuple[Event, ...] = EVERY, pid: int = 100
             ) -> list[tuple[int, int, int, int, int]]:
    """One job per ms from t0_ns, its events 0.1 ms apart."""
    return [(job, int(event), 0, pid, t0_ns + i * MS + k * MS // 10)
            for i, job in enumerate(ids) for k, event in enumerate(events)]


def records(rows: list[tuple[int, int, int, int, int]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.sort_values("t_ns", kind="stable").reset_index(drop=True)


def quick_plan(name: str) -> list[CellPlan]:
    return SCENARIOS[name].plan("redis-raw", RunOptions(quick=True))


def report(*phases: dict[str, Any]) -> DriverReport:
    """A driver report with these phases (first_id 0 unless given), workers ready at 0."""
    return DriverReport(ready_ns=0, phases=[PhaseReport(**{"type": "x", "first_id": 0, **p})
                                            for p in phases])


# A sustained phase whose 2 s window opens at 0; 100 jobs preloaded in 10 ms.
STEADY = {"type": "sustained", "window_start_ns": 0, "window_end_ns": 2000 * MS,
          "window_min_backlog": 50, "preloaded": 100, "load_start_ns": 0, "load_end_ns": 10 * MS,
          "producer_busy_s": 0.1}


# (plan, records, driver report) of cells whose analyze() runs on known records.
def throughput_cases() -> Iterator[tuple[CellPlan, pd.DataFrame, DriverReport]]:
    for plan in quick_plan("throughput"):
        yield plan, records(job_rows(range(200), 0)), report(STEADY)


def latency_cases() -> Iterator[tuple[CellPlan, pd.DataFrame, DriverReport]]:
    jobs = records(job_rows(range(200), 0))
    for plan in quick_plan("latency"):
        if plan.params["rate"] is None and "rate_fraction" in plan.options:
            plan = dataclasses.replace(plan, params={**plan.params, "rate": 500.0})
        sent = STEADY if plan.params["rate_label"] == "max" else {"load_end_ns": 200 * MS}
        yield plan, jobs, report(sent)
        if plan.params["rate"] is not None:  # the same rate, far beyond what the jobs show
            yield (dataclasses.replace(plan, params={**plan.params, "rate": 1e6}), jobs,
                   report({"load_end_ns": 200 * MS, "timed_out": True}))


def payload_cases() -> Iterator[tuple[CellPlan, pd.DataFrame, DriverReport]]:
    rows = job_rows(range(200), 0) + job_rows(range(200, 205), 500 * MS)
    for plan in quick_plan("payload"):
        yield plan, records(rows), report(STEADY, {"first_id": 200})


def memory_cases() -> Iterator[tuple[CellPlan, pd.DataFrame, DriverReport]]:
    phase = {"memory_before": {"bytes": 10_000, "method": "redis used_memory"},
             "memory_after": {"bytes": 3_000_000, "method": "redis used_memory"}}
    for plan in quick_plan("memory"):
        yield plan, records([]), report(phase)


def crash_cases() -> Iterator[tuple[CellPlan, pd.DataFrame, DriverReport]]:
    """8 jobs end before the kill; 4 run on the killed process, 2 of them run again on
    a new worker; the rest run on the new worker."""
    for plan in quick_plan("crash-recovery"):
        n = plan.params["jobs"]
        kill = 1000 * MS
        rows = job_rows(range(n), 0, (Event.INTENDED, Event.SENT))
        rows += job_rows(range(8), 100 * MS, (Event.START, Event.END))
        rows += job_rows(range(8, 12), 900 * MS, (Event.START,))
        rows += job_rows(range(8, 10), 1100 * MS, (Event.START, Event.END), pid=200)
        rows += job_rows(range(12, n), 1200 * MS, (Event.START, Event.END), pid=200)
        phase = {"first_id": 0, "kill_ns": kill, "observed_until_ns": 5000 * MS,
                 "pids_before": [100], "killed_pid": 100, "workers_replaced": 1}
        yield plan, records(rows), report(phase)


def scaling_cases() -> Iterator[tuple[CellPlan, pd.DataFrame, DriverReport]]:
    for plan in quick_plan("scaling"):
        yield plan, records(job_rows(range(200), 0)), report(STEADY)


# 200 jobs queued in 10 ms (1 MB of broker memory), the probe (id 200) behind them.
DEPTH = {"preloaded": 200, "load_start_ns": 0, "load_end_ns": 10 * MS,
         "memory_before": {"bytes": 0, "method": "redis INFO used_memory"},
         "memory_after": {"bytes": 1_000_000, "method": "redis INFO used_memory"},
         "window_start_ns": 0, "window_end_ns": 2000 * MS, "window_min_backlog": 0}


def depth_cases() -> Iterator[tuple[CellPlan, pd.DataFrame, DriverReport]]:
    """Drained with the probe; capped by the memory budget, the probe never started."""
    for plan in quick_plan("depth"):
        yield plan, records(job_rows(range(201), 0)), report(DEPTH)
        yield (plan, records(job_rows(range(200), 0)),
               report({**DEPTH, "window_min_backlog": 5, "unsent": 10,
                       "unsent_reason": "memory budget"}))


CASES: dict[str, Callable[[], Iterator[tuple[CellPlan, pd.DataFrame, DriverReport]]]] = {
    "throughput": throughput_cases, "latency": latency_cases, "payload": payload_cases,
    "memory": memory_cases, "crash-recovery": crash_cases, "scaling": scaling_cases,
    "depth": depth_cases,
}


def leaves(metrics: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Flattened names of every value, numbers or not (None, bools, strings too)."""
    for key, value in metrics.items():
        if isinstance(value, dict):
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def declared(scenario: Scenario, name: str) -> bool:
    """`name` is declared, or is a group (null when not measured) of declared names."""
    return (scenario.metric(name) is not None
            or any(pattern.startswith(f"{name}.") for pattern in scenario.metrics))


def test_every_scenario_has_a_record_case() -> None:
    assert set(CASES) == set(SCENARIOS)


@pytest.mark.parametrize("name", list(CASES))
def test_declared_metrics_cover_what_analyze_emits(name: str) -> None:
    scenario = SCENARIOS[name]
    seen: set[str] = set()
    for plan, rows, meta in CASES[name]():
        seen |= set(leaves(scenario.analyze(plan, rows, meta)))
    assert seen
    missing = sorted(n for n in seen if not declared(scenario, n))
    assert not missing, f"{name} emits undeclared metrics: {', '.join(missing)}"


def test_a_metric_name_means_the_same_everywhere() -> None:
    meaning: dict[str, tuple[str, tuple[str, str | None]]] = {}
    for scenario in SCENARIOS.values():
        for name, metric in scenario.metrics.items():
            first = meaning.setdefault(name, (scenario.name, (metric.unit, metric.better)))
            assert first[1] == (metric.unit, metric.better), (
                f"{name}: {first[0]} says {first[1]}, {scenario.name} says "
                f"{(metric.unit, metric.better)}")


def test_results_doc_lists_the_declarations() -> None:
    doc = (ROOT / "docs" / "results-schema.md").read_text()
    assert metrics_markdown() in doc, (
        "docs/results-schema.md is out of date; paste the output of\n"
        ".venv/bin/python -c 'import scenarios; print(scenarios.metrics_markdown())'")


# -- a toy scenario, registered here only ---------------------------------------------
class Toy(Scenario):
    name = "toy"
    title = "Toy widgets"
    description = "a scenario only this test knows"
    order = 99
    metrics = {"widgets_per_s": Metric("widgets/s", "higher", gated=True),
               "spares": Metric("widgets")}
    grids = Grids(quick=(1,), full=(1, 2))

    def plan(self, backend: str, options: RunOptions) -> list[CellPlan]:
        return [CellPlan(self.name, backend, {"n": n}, {}, 10.0)
                for n in self.grids.pick(options)]

    def analyze(self, plan: CellPlan, records: pd.DataFrame, meta: dict[str, Any]
                ) -> dict[str, Any]:
        return {"widgets_per_s": 1.0, "spares": 0}


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> Toy:
    scenario = Toy()
    monkeypatch.setitem(SCENARIOS, scenario.name, scenario)
    return scenario


def toy_run(path: Path, rates: dict[str, tuple[float, ...]]) -> Path:
    writer = RunWriter(path, {"id": path.name, "complete": True, "planned_cells": 6,
                              "config": {"scenarios": ["toy"], "backends": list(rates)}})
    for backend, values in rates.items():
        for rnd, value in enumerate(values, 1):
            writer.add({"scenario": "toy", "backend": backend, "profile": "default",
                        "params": {"n": 1}, "round": rnd, "status": "ok", "reason": None,
                        "settings": {}, "metrics": {"widgets_per_s": value, "spares": 0}})
    writer.finish(complete=True)
    return path


def test_toy_scenario_is_gated_by_compare(toy: Toy, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert direction_of("widgets_per_s") == 1 and unit_of("widgets_per_s") == "widgets/s"
    assert direction_of("spares") == 0 and "widgets_per_s" in default_metrics()
    assert toy.headline({"widgets_per_s": 1234.0}) == "1,234 widgets/s"
    assert (toy.headline({"widgets_per_s": 1234.0, "unstable": True, "producer_bound": True})
            == "1,234 widgets/s (unstable) (producer-bound)")
    base = toy_run(tmp_path / "base", {"asyncio": (100.0, 101.0, 99.0)})
    slow = toy_run(tmp_path / "slow", {"asyncio": (70.0, 71.0, 69.0)})
    assert main(["compare", str(base), str(slow)]) == 1
    out = capsys.readouterr().out
    gated = out.split("gated rows:")[1].split("\n\n")[0]
    assert "toy/asyncio/n=1" in gated and "widgets_per_s" in gated and "slower" in gated
    assert main(["compare", str(base), "--format", "github"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert [e["unit"] for e in exported] == ["widgets/s"]


def test_toy_scenario_has_report_sections(toy: Toy, tmp_path: Path) -> None:
    run = toy_run(tmp_path / "run", {"asyncio": (100.0,), "rq": (300.0,)})
    page = render(run).read_text()
    assert '<h3 id="verdict-toy">Toy widgets</h3>' in page
    assert '<h3 id="charts-toy">Toy widgets</h3>' in page
    table = page.split('id="table-toy"')[1].split("</table>")[0]
    assert "<th>n=1</th>" in table and "300 widgets/s" in table and "\u2605" in table
    assert "no section for" not in page


def test_the_report_kit_has_what_hooks_may_use(tmp_path: Path) -> None:
    kit = Kit(load(toy_run(tmp_path / "run", {"asyncio": (1.0,)})), SCENARIOS["throughput"])
    wanted = {n for n in vars(ReportKit) if not n.startswith("_")} | set(
        ReportKit.__annotations__)
    missing = sorted(n for n in wanted if not hasattr(kit, n))
    assert not missing, f"reports.sections.Kit lacks {', '.join(missing)}"
