"""Memory per queued job: enqueue N jobs with no worker running.

The broker's memory is read before and after (Redis INFO used_memory,
RabbitMQ's Erlang VM total, the driver's Python heap for in-process asyncio, whose jobs
are real pending tasks, each with its own payload);
bytes_per_job = delta / N, overhead = bytes_per_job - payload.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.protocol import DriverReport
from scenarios.base import CellFailed, CellPlan, Grids, Metric, RunOptions, Scenario
from scenarios.presentation import ReportKit


@dataclass(frozen=True)
class Grid:
    sizes: tuple[int, ...]  # payload bytes per job
    most_jobs: int
    budget_mib: int  # payload queued per cell at most


GRIDS = Grids(quick=Grid((1024,), 2000, 64),
              # two points: the per-job overhead and how it scales with size
              full=Grid((64, 16 * 1024), 5000, 256))


class Memory(Scenario):
    name = "memory"
    title = "Memory per queued job"
    description = "broker memory per queued job (no workers) at several payload sizes"
    order = 40
    measures_speed = False
    stops_workers = True
    grids = GRIDS
    metrics = {
        "bytes_per_job": Metric("bytes", "lower", doc="broker memory delta / jobs queued"),
        "overhead_bytes_per_job": Metric("bytes", "lower", doc="bytes_per_job - payload"),
        "broker_bytes": Metric("bytes", "lower", doc="total broker memory delta"),
        "measured": Metric(doc='how, e.g. "redis used_memory"'),
    }

    def plan(self, backend: str, options: RunOptions) -> list[CellPlan]:
        grid = self.grids.pick(options)
        budget = grid.budget_mib * 1024 * 1024
        return [
            CellPlan(
                scenario=self.name, backend=backend,
                params={"payload_bytes": size, "jobs": min(grid.most_jobs, budget // size)},
                workload={"spec": {"kind": "noop", "ms": 0}, "payload_bytes": size,
                          "phases": [{"type": "fill",
                                      "jobs": min(grid.most_jobs, budget // size)}]},
                timeout_s=180, profile=options.profile,
            )
            for size in options.payload_sizes or grid.sizes
        ]

    def analyze(self, plan: CellPlan, records: pd.DataFrame, report: DriverReport
                ) -> dict[str, Any]:
        phase = report.phases[0]
        before, after = phase.memory_before or {}, phase.memory_after or {}
        if before.get("bytes") is None or after.get("bytes") is None:
            raise CellFailed(after.get("method", "no memory reading"))
        jobs = plan.params["jobs"]
        per_job = (after["bytes"] - before["bytes"]) / jobs
        return {
            "bytes_per_job": per_job,
            "overhead_bytes_per_job": per_job - plan.params["payload_bytes"],
            "broker_bytes": after["bytes"] - before["bytes"],
            "measured": after["method"],
        }

    def headline(self, metrics: dict[str, Any]) -> str:
        got = metrics.get("bytes_per_job")
        return f"{got:,.0f} B/job" if isinstance(got, int | float) else ""

    def tables(self, kit: ReportKit) -> list[Any]:
        sizes = kit.numeric_params("payload_bytes")
        if len(sizes) > 3:
            sizes = sorted({sizes[0], kit.nearest(sizes, 1024) or sizes[0], sizes[-1]})
        columns = [kit.column(f"per job at {kit.fmt_bytes(s)} payload", {"payload_bytes": s},
                              "bytes_per_job") for s in sizes]
        return [kit.table("Memory: broker bytes per queued job", columns,
                          "Lower is better; no worker runs while the jobs are queued")]

    def charts(self, kit: ReportKit) -> list[Any]:
        return [size_chart(kit)] if kit.has_data else []


def size_chart(kit: ReportKit) -> Any:
    """Bytes per queued job against the payload size, the payload itself as reference."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    frame = kit.frame
    sizes = kit.numeric_params("payload_bytes")
    fig = kit.figure(9, 5)
    ax = fig.add_subplot()
    absent: list[Any] = []
    marked = False
    for series, backend, rows, ok in kit.present(frame, "bytes_per_job", absent):
        ok = ok.sort_values("params.payload_bytes")
        ax.errorbar(ok["params.payload_bytes"], ok["bytes_per_job"],
                    yerr=kit.errors(ok, "bytes_per_job"), marker="o", capsize=3,
                    color=kit.colour(backend), label=series)
        marked |= kit.edge_marks(ax, rows[~rows.index.isin(ok.index)]["params.payload_bytes"],
                                 backend)
    if sizes:
        xs = np.geomspace(sizes[0], sizes[-1], 20)
        ax.plot(xs, xs, color="black", linestyle="--", linewidth=1,
                label="payload size itself (reference)")
    kit.bytes_axis(ax, sizes)
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=4))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: kit.fmt_bytes(v)))
    ax.set_xlabel("payload per job (log)")
    ax.set_ylabel("broker memory per queued job (log)")
    ax.set_title("Memory per queued job vs payload size")
    ax.grid(True, which="major", alpha=0.3)
    kit.legend_outside(ax, kit.gap_handles(marked) + absent)
    notes = kit.gap_notes(frame, lambda r: kit.fmt_bytes(kit.param(r, "payload_bytes")))
    return kit.chart("memory", "Memory per queued job vs payload size", fig,
                     "Distance above the dashed line is the per-job overhead of the broker and "
                     "the library's message format.", notes)


MEMORY = Memory()
