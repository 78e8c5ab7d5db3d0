"""Scenario registry. Each scenario module plans cells and analyzes their records."""

from __future__ import annotations

from scenarios.base import Scenario
from scenarios.throughput import THROUGHPUT

SCENARIOS: dict[str, Scenario] = {s.name: s for s in [THROUGHPUT]}


def scenario_names() -> list[str]:
    return list(SCENARIOS)
