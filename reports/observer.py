"""The self-test's observer effect, as saved next to a run (observer.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.numbers import median_interval

OBSERVER_FILE = "observer.json"


def load_observer(run_dir: Path) -> dict[str, Any] | None:
    """The run's observer.json ({"date", "backends": {name: {...}}}), or None."""
    path = run_dir / OBSERVER_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text())


def group_interval(row: dict[str, Any]) -> tuple[float, float] | None:
    """The 95% interval of an ok row's median effect: `effect_interval`, or from its
    groups' rates in an observer.json written before it; None without groups (a failed
    row, or one of drains timed one after the other, which has no `effect_range`)."""
    if row.get("status") != "ok" or "effect_range" not in row:
        return None
    if "effect_interval" in row:
        return tuple(row["effect_interval"]) if row["effect_interval"] else None
    effects = [1 - i / b for i, b in zip(row["instrumented_per_s"], row["bare_per_s"],
                                         strict=True) if b]
    return median_interval(effects)


def interval_text(row: dict[str, Any]) -> str | None:
    """'+0.4% to +13.6%', or None (group_interval)."""
    interval = group_interval(row)
    return f"{interval[0]:+.1%} to {interval[1]:+.1%}" if interval else None
