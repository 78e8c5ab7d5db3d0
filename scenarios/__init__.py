"""Scenario registry. Each scenario module plans cells and analyzes their records."""

from __future__ import annotations

from scenarios.base import Scenario
from scenarios.crash import CRASH_RECOVERY
from scenarios.latency import LATENCY
from scenarios.memory import MEMORY
from scenarios.payload import PAYLOAD
from scenarios.throughput import THROUGHPUT

# Run order within a backend: memory stops the workers, so it comes last.
SCENARIOS: dict[str, Scenario] = {s.name: s for s in [THROUGHPUT, LATENCY, PAYLOAD,
                                                   CRASH_RECOVERY, MEMORY]}


def scenario_names() -> list[str]:
    return list(SCENARIOS)
