"""The tuned profile beside the default one: each backend's headline figure in both, and
the settings the tuned profile changed (with the docs they come from)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from adapters import BACKENDS
from reports.data import RunData
from scenarios import in_report_order
from scenarios.base import Scenario

BASE, TUNED = "default", "tuned"


@dataclass(frozen=True)
class Pair:
    """One backend at one parameter point of one scenario, in the default and tuned profiles."""

    scenario: str
    backend: str
    point: str  # its parameters, for people
    metric: str
    unit: str
    default: float
    tuned: float
    changes: dict[str, str]  # setting -> "value (source: ...)"; empty: tuned = default

    @property
    def ratio(self) -> float | None:
        return self.tuned / self.default if self.default else None

    def line(self) -> str:
        ratio = f" (x{self.ratio:.2f})" if self.ratio is not None else ""
        return (f"{self.scenario} {self.backend} {self.point}: {self.metric} default "
                f"{self.default:,.1f} {self.unit}, tuned {self.tuned:,.1f} {self.unit}{ratio}")


def headline_metric(scenario: Scenario) -> str | None:
    """The figure a profile is compared on: the scenario's first gated metric."""
    return next((name for name, metric in scenario.metrics.items() if metric.gated), None)


def tuned_changes(data: RunData, backend: str) -> dict[str, str]:
    """What the backend's tuned cells reported they changed (settings `tuned_changes`)."""
    cells = data.cells
    if cells.empty or "settings" not in cells:
        return {}
    mine = cells[(cells["backend"] == backend) & (cells["profile"] == TUNED)]
    for settings in mine["settings"]:
        changes = (settings or {}).get("tuned_changes") if isinstance(settings, dict) else None
        if changes:
            return dict(changes)
    return {}


def no_change_note(backend: str) -> str:
    """Why tuned = default for a backend that changed nothing (its backend.toml line)."""
    info = BACKENDS.get(backend)
    return info.profiles.get(TUNED, "") if info else ""


def _point(row: pd.Series) -> str:
    params = {k[len("params."):]: v for k, v in row.items()
              if k.startswith("params.") and v is not None and not pd.isna(v)}
    return " ".join(f"{k}={v}" for k, v in params.items() if k not in ("jobs", "duration_s"))


def _key(row: pd.Series) -> str:
    params = {k: row[k] for k in row.index if k.startswith("params.") and not pd.isna(row[k])}
    return json.dumps([row["backend"], params], sort_keys=True, default=str)


def pairs(data: RunData) -> list[Pair]:
    """Every backend and parameter point that ran ok in both the default and tuned profiles."""
    out: list[Pair] = []
    for scenario in in_report_order():
        metric = headline_metric(scenario)
        frame = data.scenario(scenario.name)
        if metric is None or frame.empty or metric not in frame:
            continue
        ok = frame[(frame["status"] == "ok") & frame[metric].notna()]
        by_profile = {p: {_key(r): r for _, r in ok[ok["profile"] == p].iterrows()}
                      for p in (BASE, TUNED)}
        for key, tuned in by_profile[TUNED].items():
            base = by_profile[BASE].get(key)
            if base is None:
                continue
            out.append(Pair(scenario.name, tuned["backend"], _point(tuned), metric,
                            scenario.metrics[metric].unit, float(base[metric]),
                            float(tuned[metric]), tuned_changes(data, tuned["backend"])))
    return out


def rows(data: RunData) -> list[dict[str, Any]]:
    """The report's rows: one per pair, with its changes or why there are none."""
    return [{"pair": pair, "changes": sorted(pair.changes.items()),
             "none": "" if pair.changes else no_change_note(pair.backend)}
            for pair in pairs(data)]


def summary_lines(data: RunData) -> list[str]:
    """Plain lines for the terminal after a run: each pair, then what the tuned profile set."""
    lines = []
    for row in rows(data):
        lines.append(row["pair"].line())
        lines += [f"    tuned {name} = {change}" for name, change in row["changes"]]
        if row["none"]:
            lines.append(f"    tuned = {row['none']}")
    return lines
