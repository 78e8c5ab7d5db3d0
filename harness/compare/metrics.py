"""What compare knows about a metric, from the scenarios' declarations
(scenarios/base.py Metric): which way is better, its unit, whether it gates by default.
A metric no scenario declares has an unknown direction: shown, never gated."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from scenarios import gated_by_default, metric_of


def direction_of(metric: str) -> int:
    """+1 bigger is better, -1 smaller is better, 0 unknown."""
    declared = metric_of(metric)
    return declared.direction if declared else 0


def unit_of(metric: str) -> str:
    declared = metric_of(metric)
    return declared.unit if declared else ""


def default_metrics() -> list[str]:
    """What --metric is when it is not given."""
    return gated_by_default()


def selected(metric: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(metric, p) for p in patterns)
