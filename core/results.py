"""The run directory: run.json, summary.json (the contract), summary.csv.

summary.json is rewritten atomically after every cell, so an interrupted or
crashed run keeps every finished cell. Schema: docs/results-schema.md.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from core.numbers import flatten, flatten_all, spread

SCHEMA = 1
# Created exclusively in a run's folder before anything else (harness/run_checks.py): of
# two runs started on one folder, the second is refused; the run's writer removes it.
CLAIM_FILE = ".run-claim"
STATUSES = ("ok", "failed", "skipped")


def seconds_by_step(cells: Iterable[tuple[str, dict[str, float] | None]]
                    ) -> list[tuple[str, dict[str, float]]]:
    """(step, {scenario: seconds}) summed over (scenario, wall_parts) pairs, the step
    with the most seconds first: where a run's time in cells went."""
    spent: dict[str, dict[str, float]] = {}
    for scenario, parts in cells:
        for step, seconds in (parts or {}).items():
            row = spent.setdefault(step, {})
            row[scenario] = row.get(scenario, 0.0) + float(seconds)
    return sorted(spent.items(), key=lambda item: -sum(item[1].values()))


class ResultsError(ValueError):
    """A path is not a usable results directory or summary."""


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime())


def plain(value: Any) -> Any:
    """JSON fallback: a numpy scalar (metrics are computed with pandas) as the Python
    value it holds, so a numpy bool stays a bool and never becomes the string "False"."""
    item = getattr(value, "item", None)
    return item() if callable(item) else str(value)


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=plain))
    tmp.replace(path)


def point_latest(run_dir: Path) -> None:
    """results/latest -> the newest run (a relative symlink); a `latest` beside the run
    that is not a symlink (a user's file or folder) is left alone."""
    link = run_dir.parent / "latest"
    if link.exists() and not link.is_symlink():
        return
    tmp = run_dir.parent / f".latest.{os.getpid()}"
    if tmp.is_symlink():
        tmp.unlink()
    tmp.symlink_to(run_dir.name)
    tmp.replace(link)


RoundMerger = Callable[[list[dict[str, Any]]], dict[str, Any]]


def aggregate(cells: list[dict[str, Any]], merge: RoundMerger | None = None
              ) -> list[dict[str, Any]]:
    """Per (scenario, backend, profile, params): median/min/max of each metric over ok rounds.

    `merge(ok cells of a group)` may give a metric one figure over all rounds
    together, stored as its `merged` (latency percentiles of the rounds'
    histograms merged, which a median of per-round percentiles is not).
    """
    groups: dict[str, dict[str, Any]] = {}
    for cell in cells:
        key = json.dumps([cell["scenario"], cell["backend"], cell.get("profile"),
                          cell["params"]], sort_keys=True)
        group = groups.setdefault(key, {
            "scenario": cell["scenario"], "backend": cell["backend"],
            "profile": cell.get("profile"), "params": cell["params"], "rounds": [],
            "status": [], "reasons": [],
        })
        group["status"].append(cell["status"])
        if cell["status"] == "ok":
            group["rounds"].append(flatten(cell["metrics"]))
            group.setdefault("ok_cells", []).append(cell)
        elif cell.get("reason"):
            group["reasons"].append(cell["reason"])
    out = []
    for group in groups.values():
        names = sorted({name for r in group["rounds"] for name in r})
        metrics = {n: spread([r.get(n) for r in group["rounds"]]) for n in names}
        if merge and group["rounds"]:
            for name, value in merge(group["ok_cells"]).items():
                if name in metrics:
                    metrics[name]["merged"] = value
        status = "ok" if group["rounds"] else (
            "skipped" if all(s == "skipped" for s in group["status"]) else "failed")
        out.append({
            "scenario": group["scenario"], "backend": group["backend"],
            "profile": group["profile"], "params": group["params"], "status": status,
            "reason": group["reasons"][0] if not group["rounds"] and group["reasons"] else None,
            "rounds_ok": len(group["rounds"]), "rounds": len(group["status"]),
            "metrics": metrics,
        })
    return out


def fingerprint(run: dict[str, Any]) -> dict[str, Any]:
    """What decides whether two runs' figures may be compared (harness/compare/fingerprint.py
    judges it): the machine, the versions and the settings that change the cells."""
    config = run.get("config") if isinstance(run.get("config"), dict) else {}
    given = config.get("broker_urls") or {}
    versions = run.get("broker_versions") or {}
    return {
        "cpu_count": run.get("cpu_count"), "python": run.get("python"),
        "slots": config.get("slots"), "profiles": config.get("profiles"),
        "quick": config.get("quick"), "window_s": config.get("window_s"),
        "inject_delay_us": config.get("inject_delay_us") or 0,
        "broker_versions": versions,
        "brokers_provided": {k: "user URL" if k in given else "harness-owned" for k in versions},
        "library_versions": run.get("library_versions") or {},
        # the commit of each --with checkout (its version string may not change)
        "checkouts": {package: (found or {}).get("commit") for package, found
                      in (config.get("checkouts") or {}).items() if isinstance(found, dict)},
    }


class RunWriter:
    """Owns one run directory while the run goes on."""

    def __init__(self, run_dir: Path, run_info: dict[str, Any],
                 merge: RoundMerger | None = None, latest: bool = False) -> None:
        """`latest`: point the `latest` link beside the run at it (a run in the results
        folder; a run the user sent elsewhere with --out leaves that folder alone)."""
        self.run_dir = run_dir
        self.merge = merge
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            probe = run_dir / ".writable"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise ResultsError(f"cannot write results to {run_dir}: {exc.strerror}") from None
        self.run_info = run_info
        self.cells: list[dict[str, Any]] = []
        self.flush()  # summary.json first: a run dir with run.json always has one
        write_json(run_dir / "run.json", run_info)
        (run_dir / CLAIM_FILE).unlink(missing_ok=True)  # the folder is this run's now
        if latest:
            try:
                point_latest(run_dir)
            except OSError:
                pass

    def add(self, cell: dict[str, Any]) -> None:
        self.cells.append(cell)
        self.flush()

    def flush(self) -> None:
        summary = {"schema": SCHEMA, "run": self.run_info,
                   "fingerprint": fingerprint(self.run_info), "cells": self.cells,
                   "aggregates": aggregate(self.cells, self.merge)}
        write_json(self.run_dir / "summary.json", summary)
        self._write_csv()

    def finish(self, **fields: Any) -> None:
        self.run_info.update(fields)
        write_json(self.run_dir / "run.json", self.run_info)
        self.flush()

    def _write_csv(self) -> None:
        rows = []
        for cell in self.cells:
            row = {k: cell.get(k) for k in ("scenario", "backend", "profile", "round", "status",
                                            "reason", "reused_from")}
            row.update({f"params.{k}": v for k, v in cell["params"].items()})
            metrics = {k: v for k, v in (cell.get("metrics") or {}).items()
                       if k != "hdr"}  # encoded histograms: summary.json has them
            row.update({f"metrics.{k}": v for k, v in flatten_all(metrics).items()})
            rows.append(row)
        columns: list[str] = []
        for row in rows:
            columns += [c for c in row if c not in columns]
        tmp = self.run_dir / "summary.csv.tmp"
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        tmp.replace(self.run_dir / "summary.csv")


def load_summary(path: Path) -> dict[str, Any]:
    """summary.json from a run dir or a file, validated enough to be used safely."""
    file = path / "summary.json" if path.is_dir() else path
    if not file.exists():
        raise ResultsError(f"{path} is not a results directory (no summary.json)")
    try:
        data = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{file} is not valid JSON: {exc}") from None
    except RecursionError:
        raise ResultsError(f"{file} is not a summary: JSON nested too deep to read") from None
    found = data.get("schema") if isinstance(data, dict) else None
    if found != SCHEMA:
        raise ResultsError(f"{file}: unsupported schema {found!r} (expected {SCHEMA})")
    if not isinstance(data.get("cells"), list):
        raise ResultsError(f"{file}: no cells list")
    run = data.get("run")
    if run is not None and not isinstance(run, dict):
        raise ResultsError(f"{file}: 'run' is not an object")
    if isinstance(run, dict) and run.get("config") is not None and not isinstance(
            run["config"], dict):
        raise ResultsError(f"{file}: 'run.config' is not an object")
    check_cells(data["cells"], file)
    return data


def make_dir(directory: Path) -> None:
    """Create `directory` (and its parents) for results; ResultsError, one line, when a
    file stands in the way or it cannot be made."""
    if directory.exists() and not directory.is_dir():
        raise ResultsError(f"{directory} is not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ResultsError(f"cannot create {directory}: {exc.strerror or exc}") from None


def check_cells(cells: list[Any], file: Path) -> None:
    """Enough structure for a reader (report, compare, history) not to crash or misjudge:
    one line on what is wrong."""
    for index, cell in enumerate(cells):
        where = f"{file}: cell {index}"
        if not isinstance(cell, dict):
            raise ResultsError(f"{where} is not an object")
        for field in ("scenario", "backend", "status"):
            if not isinstance(cell.get(field), str):
                raise ResultsError(f"{where} has no {field!r} string")
        if cell["status"] not in STATUSES:
            raise ResultsError(f"{where} has unknown status {cell['status']!r}")
        if not isinstance(cell.get("params"), dict):
            raise ResultsError(f"{where} has no 'params' object")
        for field in ("metrics", "settings"):
            if cell.get(field) is not None and not isinstance(cell[field], dict):
                raise ResultsError(f"{where}: {field!r} is not an object")
        for field in ("profile", "reason", "cell_dir", "reused_from"):
            if cell.get(field) is not None and not isinstance(cell[field], str):
                raise ResultsError(f"{where}: {field!r} is not a string")
        if (name := _beyond_float(cell.get("metrics") or {})) is not None:
            raise ResultsError(f"{where}: metric {name!r} is infinite or a number too large "
                               "to read")


def _beyond_float(metrics: dict[str, Any], prefix: str = "") -> str | None:
    """The first metric that is infinite, or an integer no float can hold (JSON readers
    take 1e999 as infinity, and any integer), else None."""
    for key, value in metrics.items():
        if isinstance(value, dict):
            if (found := _beyond_float(value, f"{prefix}{key}.")) is not None:
                return found
        elif isinstance(value, int | float) and not isinstance(value, bool) and (
                abs(value) > sys.float_info.max):
            return f"{prefix}{key}"
    return None
