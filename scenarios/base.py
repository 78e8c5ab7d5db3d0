"""What a scenario is: a planner of cells and an analyzer of their records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd


@dataclass(frozen=True)
class RunOptions:
    """The run-wide choices every scenario plans with."""

    quick: bool = False
    slots: int = 8
    profile: str = "default"
    results: bool = False
    profiles: tuple[str, ...] = ("default",)
    # User overrides of the scenarios' parameter grids (None: the scenario's own).
    durations_ms: tuple[float, ...] | None = None
    rates: tuple[float, ...] | None = None
    payload_sizes: tuple[int, ...] | None = None


@dataclass
class CellPlan:
    """One cell: a scenario at one parameter point for one backend (and round)."""

    scenario: str
    backend: str
    params: dict[str, Any]
    workload: dict[str, Any]
    timeout_s: float
    profile: str = "default"
    options: dict[str, Any] = field(default_factory=dict)
    # crash-recovery: this cell kill -9s its broker (a dedicated Redis started with
    # these server options, or the pool's RabbitMQ); None for every other cell.
    broker_kill: dict[str, str] | None = None


class CellFailed(Exception):
    """The records do not support a figure (too few jobs, none ended...)."""


class CellReused(Exception):
    """An earlier cell of the run measured exactly what this cell would: take its result."""

    def __init__(self, source: dict[str, Any]) -> None:
        super().__init__(source.get("cell_dir"))
        self.source = source


class Scenario(Protocol):
    name: str
    description: str

    def plan(self, backend: str, options: RunOptions) -> list[CellPlan]:
        """The cells this scenario runs for `backend`."""
        ...

    def analyze(self, plan: CellPlan, records: pd.DataFrame, meta: dict[str, Any]
                ) -> dict[str, Any]:
        """Metrics of one finished cell from its records and driver metadata."""
        ...
