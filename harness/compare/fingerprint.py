"""Are two runs comparable? Their fingerprints (core.results.fingerprint in summary.json).

Slots, profiles and the steady-state window (quick, window_s) change what a cell
measures: a difference refuses the comparison unless --force. Everything else (CPU
count, Python, broker and library versions, how the brokers were provided, the test
knob) is printed at the top of the comparison; an environment or broker only one run
used is not a difference (its cases are judged missing or new).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from core.results import ResultsError
from scenarios import SCENARIOS
from scenarios.base import RunOptions
from scenarios.throughput import window_of

REFUSING = ("slots", "profiles", "quick", "window_s")
# Per environment or broker: one run may use some the other did not (fewer backends).
PER_USE = ("library_versions", "broker_versions", "brokers_provided")


def fingerprint_of(summary: dict[str, Any]) -> dict[str, Any] | None:
    found = summary.get("fingerprint")
    return found if isinstance(found, dict) else None


def changes(base: Any, cur: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    """(dotted name, baseline value, current value) of every leaf that differs; a leaf
    one side lacks is None there."""
    if isinstance(base, dict) and isinstance(cur, dict):
        for key in sorted(base.keys() | cur.keys()):
            yield from changes(base.get(key), cur.get(key), f"{path}.{key}" if path else key)
    elif base != cur:
        yield path, base, cur


def with_window_used(found: dict[str, Any] | None) -> dict[str, Any] | None:
    """The fingerprint with the window its cells counted: run.json keeps --window as
    given (None: the grid's, 2 s quick and 8 s full), so `--quick` and `--quick
    --window 2` measured the same thing."""
    if found is None or found.get("window_s") is not None or found.get("quick") is None:
        return found
    return {**found, "window_s": window_of(RunOptions(quick=bool(found["quick"])))}


def forced_params(baseline: dict[str, Any], current: dict[str, Any]) -> frozenset[str]:
    """The run options two runs set differently that are also case params (slots,
    window_s): `--force` pairs their cases without them."""
    fingerprints = (with_window_used(fingerprint_of(baseline)),
                    with_window_used(fingerprint_of(current)))
    if None in fingerprints:
        return frozenset()
    base, cur = fingerprints
    return frozenset(name for name in ("slots", "window_s") if base.get(name) != cur.get(name))


def without_params(summary: dict[str, Any], names: frozenset[str]) -> dict[str, Any]:
    """`summary` with `names` moved out of each cell's params into `forced_params`, where
    the cell's scenario takes them from a run option (scaling's slots is its grid)."""
    if not names:
        return summary
    cells, seen = [], set()
    for cell in summary.get("cells") or []:
        scenario = SCENARIOS.get(str(cell.get("scenario"))) if isinstance(cell, dict) else None
        params = cell.get("params") if isinstance(cell, dict) else None
        moved = names & set(scenario.option_params) if scenario else frozenset()
        if not moved or not isinstance(params, dict):
            cells.append(cell)
            continue
        kept = {k: v for k, v in params.items() if k not in moved}
        case = (cell.get("scenario"), cell.get("backend"), cell.get("profile"),
                json.dumps(kept, sort_keys=True, default=str), cell.get("round"))
        if case in seen:
            raise ResultsError(f"--force cannot pair cases without {', '.join(sorted(moved))}: "
                               f"one run has {cell.get('scenario')}/{cell.get('backend')} "
                               f"cells that differ only in them")
        seen.add(case)
        cells.append({**cell, "params": kept,
                      "forced_params": {k: params[k] for k in moved if k in params}})
    return {**summary, "cells": cells}


def check(baseline: dict[str, Any], current: dict[str, Any], force: bool,
          offer_force: bool = True) -> list[str]:
    """Lines for the head of the comparison; raises ResultsError (exit 2) when the runs
    measured different things and `force` is off (naming --force where the caller has
    it: `offer_force`)."""
    fingerprints = (with_window_used(fingerprint_of(baseline)),
                    with_window_used(fingerprint_of(current)))
    missing = [side for side, f in zip(("baseline", "current"), fingerprints, strict=True)
               if f is None]
    if missing:
        return [f"fingerprint: none in {' and '.join(missing)} (written before fingerprints): "
                "machine, versions and settings not checked"]
    found = [(name, b, c) for name, b, c in changes(*fingerprints, "")
             if not (name.split(".")[0] in PER_USE and (b is None or c is None))]
    refused = [c for c in found if c[0].split(".")[0] in REFUSING]
    profiles = [fingerprint.get("profiles") for fingerprint in fingerprints]
    if all(isinstance(p, list) for p in profiles) and not set(profiles[0]) & set(profiles[1]):
        # a case's key holds its profile: --force could pair nothing
        raise ResultsError(f"runs not comparable: profiles {profiles[0]!r} vs "
                           f"{profiles[1]!r} have none in common, so no case pairs up")
    if refused and not force:
        raise ResultsError("runs not comparable: " + "; ".join(
            f"{name} {b!r} vs {c!r}" for name, b, c in refused)
            + (" (--force compares anyway)" if offer_force else ""))
    if not found:
        return ["fingerprint: same machine shape, versions and settings"]
    return [f"fingerprint: {name}: {b!r} -> {c!r}"
            + (" (forced)" if name.split(".")[0] in REFUSING else "") for name, b, c in found]
