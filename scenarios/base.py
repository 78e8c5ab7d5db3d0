"""What a scenario is: a planner of cells, an analyzer of their records, and a
declaration of everything the runner, compare and the report need to know about it."""

from __future__ import annotations

import fnmatch
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import pandas as pd

from core.protocol import DriverReport
from scenarios.presentation import ReportKit


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
    window_s: float | None = None  # W, the steady-state window (None: the grid's)
    slots_sweep: tuple[int, ...] | None = None  # the scaling scenario's slot counts
    memory_jobs: tuple[int, ...] | None = None  # the memory scenario's job counts
    inject_delay_us: float = 0  # test knob: CPU each library job burns (adapters/job.py)
    # the raw ceilings' layout sweep (harness/ceiling_layout.py); None: full runs only
    sweep: bool | None = None


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
    # its own slot count (the scaling scenario's sweep); None: the run's --slots
    slots: int | None = None


class CellFailed(Exception):
    """The records do not support a figure (too few jobs, none ended...)."""


class CellReused(Exception):
    """An earlier cell of the run measured exactly what this cell would: take its result."""

    def __init__(self, source: dict[str, Any]) -> None:
        super().__init__(source.get("cell_dir"))
        self.source = source


@dataclass(frozen=True)
class Metric:
    """One metric of a scenario: its unit, which way is better, whether compare gates it.

    A scenario's `metrics` are keyed by flattened name (`latency_ms.p99`) or by a
    glob over flattened names (`latency_ms.*`). A name means the same in every
    scenario that emits it (tests/test_scenario_declarations.py checks it).
    """

    unit: str = ""
    better: Literal["higher", "lower"] | None = None  # None: shown by compare, never gated
    gated: bool = False  # compare gates it when --metric is not given
    doc: str = ""

    @property
    def direction(self) -> int:
        """+1 bigger is better, -1 smaller is better, 0 unknown."""
        return {"higher": 1, "lower": -1}.get(self.better or "", 0)


G = TypeVar("G")


@dataclass(frozen=True)
class Grids(Generic[G]):
    """A scenario's parameter grid for a --quick run and for a full one."""

    quick: G
    full: G

    def pick(self, options: RunOptions) -> G:
        return self.quick if options.quick else self.full


class Scenario(ABC):
    """One scenario. An instance at module level in the scenarios package is found
    by scanning (scenarios/__init__.py); nothing else needs to name it."""

    name: str
    title: str  # the heading of its report sections
    description: str  # one line for `python -m harness list`
    order: int  # its place in the report and, among scenarios that keep workers, in a run
    metrics: Mapping[str, Metric]  # every metric analyze() emits
    grids: Grids[Any]  # what plan() reads; user overrides in RunOptions win
    all_profiles: bool = False  # plans every profile itself, whatever --profile says
    stops_workers: bool = False  # its cells stop the workers: runs after the others
    measures_speed: bool = True  # its figures depend on how fast workers drain (layout sweep)
    in_all: bool = True  # part of `--scenario all`; long sweeps (scaling, depth) run by name
    # params whose value is a run option (--slots, --window) rather than a point of the
    # grid: `compare --force` pairs cases of two runs that set the option differently
    option_params: tuple[str, ...] = ()
    # cell options that carry a figure from an earlier cell to this one (resolve), not a
    # setting the backend ran with: left out of the cell's recorded settings
    handoff_options: tuple[str, ...] = ()
    # the RunOptions fields its plan reads from the command line (--durations: durations_ms)
    reads_options: tuple[str, ...] = ()

    def not_planned(self, backend: str) -> str | None:
        """Why `plan` gives `backend` no cell at all (None: it gives it some)."""
        return None

    @abstractmethod
    def plan(self, backend: str, options: RunOptions) -> list[CellPlan]:
        """The cells this scenario runs for `backend`."""

    @abstractmethod
    def analyze(self, plan: CellPlan, records: pd.DataFrame, report: DriverReport
                ) -> dict[str, Any]:
        """Metrics of one finished cell from its records and driver metadata."""

    def resolve(self, plan: CellPlan, finished: list[dict[str, Any]], round_no: int
                ) -> CellPlan:
        """The cell as it runs, bound once the cells before it have ended.

        May raise CellReused (an earlier cell measured exactly this) or
        CellFailed; `finished` are the summary cells so far. As planned by default.
        """
        return plan

    def metric(self, name: str) -> Metric | None:
        """The declaration of a flattened metric name, or None."""
        if name in self.metrics:
            return self.metrics[name]
        return next((m for pattern, m in self.metrics.items()
                     if fnmatch.fnmatchcase(name, pattern)), None)

    def headline(self, metrics: dict[str, Any]) -> str:
        """The figure on the progress line of an ok cell: its first gated metric, and
        what the report will say of a steady-state window that is not steady or was
        fed short."""
        for name, metric in self.metrics.items():
            got = metrics.get(name)
            if metric.gated and isinstance(got, int | float):
                flags = [flag.replace("_", "-") for flag in ("unstable", "producer_bound")
                         if metrics.get(flag) is True]
                return f"{got:,.0f} {metric.unit}" + "".join(f" ({f})" for f in flags)
        return ""

    def tables(self, kit: ReportKit) -> list[Any]:
        """Its verdict tables. By default one: the first gated metric (else the first
        with a direction) at each parameter point."""
        ranked = sorted(self.metrics, key=lambda n: (not self.metrics[n].gated,
                                                     not self.metrics[n].direction))
        return [kit.params_table(ranked[0])] if ranked else []

    def charts(self, kit: ReportKit) -> list[Any]:
        """Its charts; none by default."""
        return []
