"""One run's figures for dashboards: github-action-benchmark (customBiggerIsBetter and
customSmallerIsBetter, one file each) and the Bencher Metric Format."""

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
    Key,
    ceiling_of,
    key_of,
    label,
    normalised,
    per_loop,
    per_round,
)

Series = tuple[str, str, str, list[float]]  # case label, measure, unit, per-round values


def export_series(summary: dict[str, Any], patterns: Sequence[str], absolute: bool,
                  source: str) -> list[Series]:
    """(case, measure, unit, per-round values) of one run; a rate per probe loop and a
    rate over its ceiling are extra rows. A case whose every cell reused another's result
    (latency's max and payload's 64 B are the throughput noop cell) is that case's
    measurement again, so it is left out."""
    table = per_round(summary, source)
    copies = reused_cases(summary, source)
    out = []
    for key in sorted(set(table) - copies):
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


def reused_cases(summary: dict[str, Any], source: str) -> set[Key]:
    """The cases all of whose cells are copies of another cell's result."""
    reused: dict[Key, bool] = {}
    for index, cell in enumerate(summary["cells"]):
        key = key_of(cell, index, source)
        reused[key] = reused.get(key, True) and bool(cell.get("reused_from"))
    return {key for key, copy in reused.items() if copy}


def render_github(series: list[Series], bigger_is_better: bool = True) -> str:
    """github-action-benchmark, tool customBiggerIsBetter (or, with `bigger_is_better`
    off, customSmallerIsBetter): [{name, unit, value, range, extra}] of the metrics of
    that direction; the tool takes one direction per file."""
    tool = "customBiggerIsBetter" if bigger_is_better else "customSmallerIsBetter"
    entries = []
    for case, measure, unit, values in series:
        direction = direction_of(measure.split("/")[0])
        if direction == 0 or (direction > 0) != bigger_is_better:
            continue
        entries.append({
            "name": f"{case} {measure}", "unit": unit, "value": statistics.median(values),
            "range": f"± {(max(values) - min(values)) / 2:.6g}",
            "extra": f"median of {counted(len(values), 'round')}; min {min(values):.6g}, "
                     f"max {max(values):.6g}",
        })
    if not entries:
        example = "jobs_per_s" if bigger_is_better else "cpu_us_per_job"
        raise ResultsError(f"nothing to export: {tool} takes only metrics where "
                           f"{'bigger' if bigger_is_better else 'smaller'} is better (e.g. "
                           f"{example}; --metric chooses)")
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
