"""One run's figures for dashboards: github-action-benchmark (customBiggerIsBetter) and
the Bencher Metric Format."""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Sequence
from typing import Any

from core.results import ResultsError
from core.words import counted
from harness.compare.metrics import direction_of, selected, unit_of
from harness.compare.table import (
    AT_MACHINE_SPEED,
    ceiling_of,
    label,
    normalised,
    per_loop,
    per_round,
)

Series = tuple[str, str, str, list[float]]  # case label, measure, unit, per-round values


def export_series(summary: dict[str, Any], patterns: Sequence[str], absolute: bool,
                  source: str) -> list[Series]:
    """(case, measure, unit, per-round values) of one run; a rate per probe loop and a
    rate over its ceiling are extra rows."""
    table = per_round(summary, source)
    out = []
    for key in sorted(table):
        for metric in sorted(table[key]):
            if not selected(metric, patterns):
                continue
            out.append((label(key), metric, unit_of(metric), list(table[key][metric].values())))
            steady = None if absolute else per_loop(table, key, metric)
            if steady:
                name = AT_MACHINE_SPEED[metric]
                out.append((label(key), name, unit_of(name), steady))
            norm = None if absolute else normalised(table, key, metric)
            if norm:
                ceiling = ceiling_of(key[1])
                out.append((label(key), f"{metric}/{ceiling}", f"x {ceiling}", norm[0]))
    return out


def render_github(series: list[Series]) -> str:
    """github-action-benchmark, tool customBiggerIsBetter: [{name, unit, value, range, extra}]."""
    entries = []
    for case, measure, unit, values in series:
        if direction_of(measure.split("/")[0]) <= 0:
            continue
        entries.append({
            "name": f"{case} {measure}", "unit": unit, "value": statistics.median(values),
            "range": f"± {(max(values) - min(values)) / 2:.6g}",
            "extra": f"median of {counted(len(values), 'round')}; min {min(values):.6g}, "
                     f"max {max(values):.6g}",
        })
    if not entries:
        raise ResultsError("nothing to export: customBiggerIsBetter takes only metrics where "
                           "bigger is better (e.g. jobs_per_s)")
    return json.dumps(entries, indent=1) + "\n"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:64]


def render_bencher(series: list[Series]) -> str:
    """Bencher Metric Format: {benchmark: {measure slug: {value, lower_value, upper_value}}}."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for case, measure, _unit, values in series:
        out.setdefault(case, {})[slug(measure.replace("/", " per "))] = {
            "value": statistics.median(values), "lower_value": min(values),
            "upper_value": max(values)}
    return json.dumps(out, indent=1) + "\n"
