"""Each scenario's part of the report: its table and chart hooks, given a Kit bound to
its data (the scenarios.presentation.ReportKit the hooks are written against)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pandas as pd

import reports.charts as charts
import reports.verdict as verdict
from reports.charts import Chart
from reports.data import RunData, param, value
from reports.html import brief
from reports.style import colour, fmt_bytes, fmt_num, line_style
from reports.verdict import Column, Table
from scenarios import in_report_order
from scenarios.base import Scenario


class Kit:
    """One scenario's data and the report's building blocks, for its hooks."""

    def __init__(self, data: RunData, scenario: Scenario) -> None:
        self.scenario = scenario
        self.frame = data.scenario(scenario.name)
        self.cells = data.scenario_cells(scenario.name)
        self.has_data = data.has_data(scenario.name)

    # -- values and formatting ------------------------------------------------------
    value = staticmethod(value)
    param = staticmethod(param)
    nearest = staticmethod(verdict.nearest)
    above_ceiling = staticmethod(verdict.above_ceiling)
    fmt_num = staticmethod(fmt_num)
    fmt_bytes = staticmethod(fmt_bytes)
    colour = staticmethod(colour)
    line_style = staticmethod(line_style)

    def numeric_params(self, name: str, frame: pd.DataFrame | None = None) -> list[float]:
        return verdict.numeric_params(self.frame if frame is None else frame, name)

    def _unit(self, metric: str) -> str:
        declared = self.scenario.metric(metric)
        return declared.unit if declared else ""

    def fmt(self, metric: str, value: float) -> str:
        return verdict.formatter(self._unit(metric))(value)

    # -- tables ----------------------------------------------------------------------
    def column(self, label: str, where: Mapping[str, Any], metric: str, *,
               extra: Callable[[pd.Series], str] | None = None,
               zero_is_goal: bool = False,
               absent: Callable[[pd.Series], str | None] | None = None) -> Column:
        declared = self.scenario.metric(metric)
        return Column(label, verdict.where(dict(where)), metric,
                      higher_is_better=bool(declared and declared.better == "higher"),
                      fmt=verdict.formatter(self._unit(metric)),
                      extra=extra or (lambda row: ""), zero_is_goal=zero_is_goal,
                      absent=absent or (lambda row: None))

    def table(self, title: str, columns: list[Column], note: str, *, slug: str | None = None,
              frame: pd.DataFrame | None = None, series_col: str = "series",
              explanations: Iterable[tuple[str, str]] = ()) -> Table:
        table = verdict.build(self.frame if frame is None else frame,
                              slug or self.scenario.name, title, columns, note, series_col)
        table.explanations = list(explanations)
        return table

    def params_table(self, metric: str) -> Table:
        names = [c.removeprefix("params.") for c in self.frame.columns
                 if isinstance(c, str) and c.startswith("params.")]
        points: dict[str, dict[str, Any]] = {}
        for _, row in self.frame.iterrows():
            params = {n: v for n in names if (v := param(row, n)) is not None}
            points.setdefault(brief(params) or metric, params)
        columns = [self.column(label, params, metric) for label, params in points.items()]
        declared = self.scenario.metric(metric)
        better = declared.better if declared else None
        return self.table(f"{self.scenario.title}: {metric}", columns,
                          f"{better.capitalize()} is better" if better else "")

    # -- charts ----------------------------------------------------------------------
    figure = staticmethod(charts.new_figure)
    present = staticmethod(charts.present)
    ok_rows = staticmethod(charts.ok_rows)
    state_of = staticmethod(charts.state_of)
    note_absent = staticmethod(charts.note_absent)
    errors = staticmethod(charts.errors)
    edge_marks = staticmethod(charts.edge_marks)
    gap_handles = staticmethod(charts.gap_handles)
    flag_rings = staticmethod(charts.flag_rings)
    flagged_rows = staticmethod(charts.flagged_rows)
    gap_notes = staticmethod(charts.gap_notes)
    legend_outside = staticmethod(charts.legend_outside)
    plain_log_y = staticmethod(charts.plain_log_y)
    bytes_axis = staticmethod(charts.bytes_axis)

    def chart(self, slug: str, title: str, figure: Any, caption: str,
              notes: list[str]) -> Chart:
        return Chart(slug, self.scenario.name, title, charts.to_png(figure), caption, notes)


def build(data: RunData) -> tuple[dict[str, list[Table]], list[Chart]]:
    """Every scenario's tables (by name, in report order) and charts."""
    tables: dict[str, list[Table]] = {}
    figures: list[Chart] = []
    for scenario in in_report_order():
        kit = Kit(data, scenario)
        tables[scenario.name] = scenario.tables(kit)
        verdict.add_not_run(data, scenario.name, tables[scenario.name])
        add_reused(data, scenario.name, tables[scenario.name])
        figures += [c for c in scenario.charts(kit) if c is not None]
    return tables, figures


def add_reused(data: RunData, name: str, tables: list[Table]) -> None:
    """Say on scenario `name`'s first table which of its figures are another scenario's
    cells, reused rather than measured again (`reused_from`): the same measurement must
    not read as a second, agreeing one."""
    cells = data.scenario_cells(name)
    if cells.empty or not any(t.columns for t in tables):
        return
    reused = cells[(cells["status"] == "ok") & (cells["reused_from"] != "")]
    by_dir = {row["cell_dir"]: row for _, row in data.cells.iterrows() if row["cell_dir"]}
    pairs = sorted({_differing(row["params"], by_dir[row["reused_from"]]["params"])
                    + (by_dir[row["reused_from"]]["scenario"],)
                    for _, row in reused.iterrows() if row["reused_from"] in by_dir})
    if not pairs:
        return
    said = "; ".join(f"{here or 'its figure'} is the {source} cell {there}".rstrip()
                     for here, there, source in pairs)
    table = next(t for t in tables if t.columns)
    table.note = (f"{table.note} Reused, not measured again: {said}, in the same rounds "
                  "with the same settings (one measurement shown twice, not two that "
                  "agree).").strip()


def _differing(here: dict[str, Any], there: dict[str, Any]) -> tuple[str, str]:
    """Two cells' params in brief, each without what both share."""
    return (brief({k: v for k, v in here.items() if there.get(k) != v}),
            brief({k: v for k, v in there.items() if here.get(k) != v}))
