"""Payload size impact: 64 B to 1 MiB per job.

Each cell runs noop jobs carrying the payload in the throughput scenario's
steady-state window (its preload gives the enqueue rate; the backlog it
keeps is capped in bytes), then sends single jobs one at a time on the idle
system for latency.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from core.protocol import DriverReport
from scenarios.base import CellPlan, Grids, Metric, RunOptions, Scenario
from scenarios.common import (
    ENQUEUE_PER_S,
    JOB_COUNT_METRICS,
    STEADY_METRICS,
    job_counts,
    preload_enqueue_per_s,
    steady_rate,
)
from scenarios.latency import per_job_times
from scenarios.presentation import ReportKit
from scenarios.stats import histogram_of, percentiles_ms
from scenarios.throughput import sustained, window_of


@dataclass(frozen=True)
class Grid:
    sizes: tuple[int, ...]  # payload bytes per job
    budget_mib: int  # payload a cell holds in the broker at most
    most_jobs: int
    probes: int  # single jobs on the idle system, for latency
    limit_s: float  # of the batch


GRIDS = Grids(quick=Grid((64, 1024 * 1024), 32, 1000, 5, 3.0),
              full=Grid((64, 1024, 16 * 1024, 256 * 1024, 1024 * 1024), 128, 2000, 10, 5.0))


class Payload(Scenario):
    name = "payload"
    title = "Payload size"
    description = "throughput, enqueue rate and latency from 64 B to 1 MiB payloads"
    order = 30
    grids = GRIDS
    metrics = {
        **STEADY_METRICS,
        "enqueue_per_s": ENQUEUE_PER_S,
        "latency_ms.*": Metric("ms", "lower", doc="{p50,p99} of the probes, intended -> start"),
        "latency_samples": Metric("jobs", doc="probes with a latency"),
        **JOB_COUNT_METRICS,
    }

    def plan(self, backend: str, options: RunOptions) -> list[CellPlan]:
        grid = self.grids.pick(options)
        cells = []
        for size in options.payload_sizes or grid.sizes:
            steady, seconds = sustained(options)
            steady["max_backlog_bytes"] = grid.budget_mib * 1024 * 1024
            cells.append(CellPlan(
                scenario=self.name, backend=backend,
                params={"payload_bytes": size, "slots": options.slots,
                        "window_s": window_of(options)},
                workload={"spec": {"kind": "noop", "ms": 0}, "payload_bytes": size, "phases": [
                    steady,
                    # the backlog is still queued: probe an idle system
                    {"type": "idle", "jobs": grid.probes, "gap_ms": 20, "time_limit_s": 30,
                     "purge_first": True},
                ]},
                timeout_s=seconds + 120, profile=options.profile,
            ))
        return cells

    def analyze(self, plan: CellPlan, records: pd.DataFrame, report: DriverReport
                ) -> dict[str, Any]:
        probe_first = report.phases[1].first_id
        batch = records[records["job_id"] < probe_first]
        probes = per_job_times(records[records["job_id"] >= probe_first])
        latency = percentiles_ms(histogram_of((probes["start"] - probes["intended"]).dropna()))
        return {
            **steady_rate(batch, report.phases[0], plan.params["window_s"]),
            "enqueue_per_s": preload_enqueue_per_s(report.phases[0]),
            "latency_ms": {"p50": latency["p50"], "p99": latency["p99"]},
            "latency_samples": int(probes["start"].notna().sum()),
            **job_counts(batch),
        }

    def tables(self, kit: ReportKit) -> list[Any]:
        sizes = kit.numeric_params("payload_bytes")
        columns = []
        for target in (1024, 1024 ** 2):
            size = kit.nearest(sizes, target)
            if size is not None:
                columns.append(kit.column(f"jobs/s at {kit.fmt_bytes(size)}",
                                          {"payload_bytes": size}, "jobs_per_s"))
        return [kit.table("Payload: throughput at 1 KiB and 1 MiB per job", columns,
                          "Higher is better")]

    def charts(self, kit: ReportKit) -> list[Any]:
        return [size_chart(kit)] if kit.has_data else []


def size_chart(kit: ReportKit) -> Any:
    """Drain rate and idle p99 latency against the payload size."""
    frame = kit.frame
    sizes = kit.numeric_params("payload_bytes")
    fig = kit.figure(11, 4.6)
    axes = fig.subplots(1, 2)
    panels = ((axes[0], "jobs_per_s", "completed jobs per second (log)", "Throughput"),
              (axes[1], "latency_ms.p99", "p99 queue latency, ms (log)", "p99 latency, idle"))
    absent: list[Any] = []
    marked = False
    for ax, metric, ylabel, title in panels:
        for series, backend, rows, ok in kit.present(frame, metric, absent):
            ok = ok.sort_values("params.payload_bytes")
            ax.errorbar(ok["params.payload_bytes"], ok[metric], yerr=kit.errors(ok, metric),
                        marker="o", capsize=3, color=kit.colour(backend), label=series)
            marked |= kit.edge_marks(
                ax, rows[~rows.index.isin(ok.index)]["params.payload_bytes"], backend)
        kit.bytes_axis(ax, sizes)
        kit.plain_log_y(ax)
        ax.set_xlabel("payload per job (log)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, which="major", alpha=0.3)
    kit.legend_outside(axes[1], kit.gap_handles(marked) + absent)
    fig.suptitle("Payload size: throughput and latency")
    notes = kit.gap_notes(frame, lambda r: kit.fmt_bytes(kit.param(r, "payload_bytes")))
    return kit.chart("payload", "Throughput and p99 latency vs payload size", fig,
                     "Left: batch drain rate. Right: single jobs sent one at a time on an idle "
                     "system. Error bars: min..max across rounds.", notes)


PAYLOAD = Payload()
