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


class CellFailed(Exception):
    """The records do not support a figure (too few jobs, none ended...)."""


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
