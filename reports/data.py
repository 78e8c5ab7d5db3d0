"""Load a run directory and tidy summary.json into the DataFrames the report reads.

`groups` has one row per aggregate (scenario, backend, profile, params):
params as `params.<name>` columns, each metric's median under its flattened
name and its spread under `<name>:min`, `<name>:max`, `<name>:n`. Flags that
aggregates drop (bools, strings such as `saturated`, `explanation`) are
carried over from the ok cells. `cells` has one row per cell, with the raw
metrics kept for what aggregates cannot hold (HdrHistograms).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from core.numbers import flatten
from core.results import ResultsError, aggregate, load_summary
from reports.style import backend_rank
from scenarios.stats import merged_round_percentiles


@dataclass
class RunData:
    run_dir: Path
    run: dict[str, Any]
    cells: pd.DataFrame
    groups: pd.DataFrame

    def scenario(self, name: str) -> pd.DataFrame:
        """Aggregates of one scenario, in registry order of backends."""
        return self.groups[self.groups["scenario"] == name]

    def has_data(self, name: str) -> bool:
        frame = self.scenario(name)
        return bool((frame["status"] == "ok").any())

    def scenario_cells(self, name: str) -> pd.DataFrame:
        return self.cells[self.cells["scenario"] == name]


def group_key(scenario: str, backend: str, profile: Any, params: dict[str, Any]) -> str:
    return json.dumps([scenario, backend, profile, params], sort_keys=True, default=str)


def _flags(metrics: dict[str, Any]) -> dict[str, Any]:
    """Non-numeric top-level metrics (saturated, explanation, measured)."""
    return {k: v for k, v in metrics.items()
            if isinstance(v, bool | str) and not k.startswith("hdr")}


def _cell_rows(cells: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for cell in cells:
        metrics = cell.get("metrics") or {}
        row: dict[str, Any] = {
            "scenario": cell["scenario"], "backend": cell["backend"],
            "profile": cell.get("profile") or "default", "round": cell.get("round"),
            "status": cell["status"], "reason": cell.get("reason") or "",
            "settings": cell.get("settings") or {}, "raw": metrics,
            "cell_dir": cell.get("cell_dir") or "",
            "reused_from": cell.get("reused_from") or "",
            "params": dict(cell["params"]),
            "wall_s": cell.get("wall_s") if isinstance(cell.get("wall_s"), int | float)
            else None,
            "wall_parts": cell.get("wall_parts") if isinstance(cell.get("wall_parts"), dict)
            else None,
            "key": group_key(cell["scenario"], cell["backend"], cell.get("profile"),
                             cell["params"]),
        }
        row.update({f"params.{k}": v for k, v in cell["params"].items()})
        row.update(flatten({k: v for k, v in metrics.items() if k != "hdr"}))
        row.update(_flags(metrics))
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else ["scenario", "backend", "profile",
                                                         "round", "status", "reason", "key"])


def _group_rows(aggregates: list[dict[str, Any]], cells: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for agg in aggregates:
        key = group_key(agg["scenario"], agg["backend"], agg.get("profile"), agg["params"])
        row: dict[str, Any] = {
            "scenario": agg["scenario"], "backend": agg["backend"],
            "profile": agg.get("profile") or "default", "status": agg.get("status", "failed"),
            "reason": agg.get("reason") or "", "rounds": agg.get("rounds", 0),
            "rounds_ok": agg.get("rounds_ok", 0), "key": key,
        }
        row.update({f"params.{k}": v for k, v in agg["params"].items()})
        for name, spread in (agg.get("metrics") or {}).items():
            if not isinstance(spread, dict):
                raise ResultsError(f"summary.json: aggregate metric {name!r} is not "
                                   f"{{median, min, max, n}}")
            for stat in ("median", "min", "max", "n"):
                got = spread.get(stat)
                if got is not None and (isinstance(got, bool) or not isinstance(got, int | float)):
                    raise ResultsError(f"summary.json: aggregate metric {name!r} {stat} is "
                                       f"not a number: {str(got)[:40]!r}")
                row[name if stat == "median" else f"{name}:{stat}"] = got
            if isinstance(spread.get("merged"), int | float):  # all rounds as one figure
                row[name] = spread["merged"]
        if not cells.empty:
            mine = cells[(cells["key"] == key) & (cells["status"] == "ok")]
            for flag in ("timed_out", "producer_limited"):
                if flag in mine:
                    # older summaries hold numpy bools written as "True"/"False"
                    row[flag] = bool(mine[flag].isin([True, "True"]).any())
            if "saturated" in mine and len(mine):  # no latency in any round: no figure
                row["saturated"] = bool(mine["saturated"].isin([True, "True"]).all())
            for flag in ("unstable", "producer_bound", "saturated", "untested", "noisy",
                         "whole_broker"):  # per round
                if flag in mine:
                    row[f"{flag}_rounds"] = int(mine[flag].isin([True, "True"]).sum())
            for flag in ("explanation", "measured", "second_queue"):
                if flag in mine:
                    texts = [t for t in dict.fromkeys(mine[flag].dropna()) if t]
                    row[flag] = " / ".join(map(str, texts))
            if not row["reason"] and row["status"] != "ok":
                reasons = cells[(cells["key"] == key) & (cells["reason"] != "")]["reason"]
                row["reason"] = reasons.iloc[0] if len(reasons) else ""
        rows.append(row)
    frame = pd.DataFrame(rows, columns=None if rows else ["scenario", "backend", "profile",
                                                          "status", "reason", "key"])
    if frame.empty:
        return frame
    frame["_rank"] = frame["backend"].map(backend_rank)
    return frame.sort_values("_rank", kind="stable").drop(columns="_rank").reset_index(drop=True)


def _series(groups: pd.DataFrame) -> pd.Series:
    """Backend name, with the profile when a backend ran several in one scenario."""
    if groups.empty:
        return pd.Series([], dtype=object)
    many = groups.groupby(["scenario", "backend"])["profile"].transform("nunique") > 1
    return groups["backend"].where(~many, groups["backend"] + " [" + groups["profile"] + "]")


def load(run_dir: Path) -> RunData:
    """The run at `run_dir`; ResultsError (one line) when it is not a usable results dir."""
    if not run_dir.is_dir():
        raise ResultsError(f"{run_dir} is not a results directory")
    summary = load_summary(run_dir)
    file = run_dir / "summary.json"
    run = summary.get("run") if isinstance(summary.get("run"), dict) else {}
    aggregates = summary.get("aggregates")
    if aggregates is None:
        aggregates = aggregate(summary["cells"], merged_round_percentiles)
    if not isinstance(aggregates, list) or not all(
            isinstance(a, dict) and isinstance(a.get("params"), dict)
            and isinstance(a.get("scenario"), str) and isinstance(a.get("backend"), str)
            for a in aggregates):
        raise ResultsError(f"{file}: malformed aggregates list")
    cells = _cell_rows(summary["cells"])
    groups = _group_rows(aggregates, cells)
    if not groups.empty:
        groups["series"] = _series(groups)
        saturated = groups["saturated"] if "saturated" in groups else False
        groups["saturated"] = pd.Series(saturated, index=groups.index).fillna(False).astype(bool)
        cells["series"] = cells["key"].map(dict(zip(groups["key"], groups["series"],
                                                    strict=True))).fillna(cells["backend"])
    return RunData(run_dir=run_dir, run=run, cells=cells, groups=groups)


def value(row: pd.Series, metric: str, stat: str = "median") -> float | None:
    """A metric's median (or min/max/n) from a group row; None when absent."""
    name = metric if stat == "median" else f"{metric}:{stat}"
    raw = row.get(name)
    if raw is None or pd.isna(raw):
        return None
    return float(raw)


def param(row: pd.Series, name: str) -> Any:
    raw = row.get(f"params.{name}")
    if raw is None or (not isinstance(raw, str | dict | list) and pd.isna(raw)):
        return None
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)  # a column with gaps turns ints into floats
    return raw
