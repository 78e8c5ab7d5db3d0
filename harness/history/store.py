"""History entries: a run's summary.json trimmed to what the history charts and compare
need. An entry is itself a valid summary (schema 1), so `compare` can read it."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from core.results import ResultsError, fingerprint, make_dir, write_json
from harness.baselines import config_of, read_summary, run_of
from harness.compare.fingerprint import fingerprint_of
from harness.compare.metrics import default_metrics, selected

HISTORY = 1  # version of the entry format
ENTRY_FIELDS = {"commit": str, "date": str, "run": dict, "fingerprint": dict}
RUN_FIELDS = ("id", "started", "host", "cpu_count", "python", "git_revision", "config",
              "library_versions", "broker_versions", "complete", "speed_probe")
# besides the gated ones: compare's coverage and row notes read the first three, its
# per-loop basis the rest
KEPT_METRICS = ("unstable", "producer_bound", "window_s", "jobs_per_loop", "cpu_loops_per_job")


def trimmed_cell(cell: dict[str, Any]) -> dict[str, Any]:
    metrics = cell.get("metrics") if isinstance(cell.get("metrics"), dict) else {}
    return {
        # cell_dir and reused_from: compare judges a cell reused by another scenario once
        **{k: cell.get(k) for k in ("scenario", "backend", "profile", "params", "round",
                                    "status", "reason", "cell_dir", "reused_from")
           if k in cell or k not in ("cell_dir", "reused_from")},
        "metrics": {k: v for k, v in metrics.items()
                    if k in KEPT_METRICS or selected(k, default_metrics())},
    }


def entry_of(run_dir: Path) -> dict[str, Any]:
    summary = read_summary(run_dir)
    run = {k: v for k, v in run_of(summary).items() if k in RUN_FIELDS}
    if config_of(summary).get("inject_delay_us"):
        raise ResultsError(f"{run_dir}: ran with --inject-delay-us (a test knob); not history")
    cells = [trimmed_cell(c) for c in summary["cells"] if isinstance(c, dict)]
    if not any(c["status"] == "ok" and c["metrics"] for c in cells):
        raise ResultsError(f"{run_dir}: no ok cell with a gated metric; nothing to keep")
    return {"schema": summary["schema"], "history": HISTORY,
            "commit": str(run.get("git_revision") or "unknown"),
            "date": str(run.get("started") or ""), "run": run,
            "fingerprint": fingerprint_of(summary) or fingerprint(run), "cells": cells}


def file_name(entry: dict[str, Any]) -> str:
    """<start time>-<commit>.json; a run without a start time is named by its cells, so
    two undated runs are two entries."""
    stamp = re.sub(r"[^0-9A-Za-z]", "", entry["date"]) or "undated" + hashlib.sha1(
        json.dumps(entry["cells"], sort_keys=True).encode()).hexdigest()[:8]
    return f"{stamp}-{re.sub(r'[^0-9A-Za-z]', '', entry['commit'])[:12]}.json"


def add(run_dir: Path, directory: Path) -> tuple[Path, bool]:
    """Write RUN_DIR's entry into DIRECTORY (the same run added twice is one file); the
    entry's path and whether it replaced one."""
    entry = entry_of(run_dir)
    target = directory / file_name(entry)
    make_dir(directory)
    replaced = target.exists()
    try:
        write_json(target, entry)
    except OSError as exc:
        raise ResultsError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target, replaced


def load(directory: Path) -> list[dict[str, Any]]:
    """Every entry in DIRECTORY, oldest first."""
    if not directory.is_dir():
        raise ResultsError(f"{directory}: no such history directory")
    entries = []
    for path in sorted(directory.glob("*.json")):
        entry = read_summary(path)
        if entry.get("history") != HISTORY:
            raise ResultsError(f"{path}: not a history entry (history {HISTORY})")
        for field, kind in ENTRY_FIELDS.items():
            if not isinstance(entry.get(field), kind):
                raise ResultsError(f"{path}: not a valid history entry ({field!r} is not "
                                   f"a {kind.__name__})")
        entries.append(entry)
    if not entries:
        raise ResultsError(f"{directory}: no history entries; add runs with "
                           "`python -m harness history add RUN_DIR --dir DIR`")
    return sorted(entries, key=lambda e: e["date"])
