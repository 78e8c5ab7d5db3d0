"""Payload size impact: 64 B to 1 MiB per job.

Each cell runs noop jobs carrying the payload in the throughput scenario's
steady-state window (its preload gives the enqueue rate; the backlog it
keeps is capped in bytes), then sends single jobs one at a time on the idle
system for latency. The throughput scenario's noop cell is exactly the cell
of the smallest size (scenarios/throughput.py, noop_workload): when it ran
in the same round, its result is reused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from core.protocol import DriverReport
from scenarios.base import CellPlan, CellReused, Grids, RunOptions, Scenario
from scenarios.common import (
    ENQUEUE_PER_S,
    JOB_COUNT_METRICS,
    PROBE_METRICS,
    STEADY_METRICS,
    STEADY_TABLE_NOTE,
    declared_only,
    job_counts,
    preload_enqueue_per_s,
    split_probes,
    steady_rate,
)
from scenarios.presentation import ReportKit
from scenarios.throughput import (
    NOOP_PAYLOAD_BYTES,
    noop_workload,
    same_round_throughput,
    window_of,
)


@dataclass(frozen=True)
class Grid:
    sizes: tuple[int, ...]  # payload bytes per job


# A full run's sizes are a factor 16 or 64 apart (memory's are 64 B and 16 KiB); 256 KiB
# went for the full run's 25-minute budget: --payload-sizes adds it back.
GRIDS = Grids(quick=Grid((NOOP_PAYLOAD_BYTES, 1024 * 1024)),
              full=Grid((NOOP_PAYLOAD_BYTES, 1024, 16 * 1024, 1024 * 1024)))


class Payload(Scenario):
    name = "payload"
    title = "Payload size"
    description = "throughput, enqueue rate and latency from 64 B to 1 MiB payloads"
    reads_options = ("payload_sizes",)
    order = 30
    option_params = ("slots", "window_s")
    grids = GRIDS
    metrics = {
        **STEADY_METRICS,
        "enqueue_per_s": ENQUEUE_PER_S,
        **PROBE_METRICS,
        **JOB_COUNT_METRICS,
    }

    def plan(self, backend: str, options: RunOptions) -> list[CellPlan]:
        cells = []
        for size in options.payload_sizes or self.grids.pick(options).sizes:
            workload, seconds = noop_workload(size, options)
            cells.append(CellPlan(
                scenario=self.name, backend=backend,
                params={"payload_bytes": size, "slots": options.slots,
                        "window_s": window_of(options)},
                workload=workload, timeout_s=seconds + 90, profile=options.profile,
            ))
        return cells

    def resolve(self, plan: CellPlan, finished: list[dict[str, Any]], round_no: int
                ) -> CellPlan:
        """The smallest size is the throughput scenario's noop cell: reuse it when it ran
        in this round, keeping the metrics this scenario declares."""
        if plan.params["payload_bytes"] != NOOP_PAYLOAD_BYTES:
            return plan
        source = same_round_throughput(finished, plan, round_no, duration_ms=0,
                                       slots=plan.params["slots"],
                                       window_s=plan.params["window_s"])
        if source is None:
            return plan
        raise CellReused(dict(source, metrics=declared_only(source["metrics"], self.metrics)))

    def analyze(self, plan: CellPlan, records: pd.DataFrame, report: DriverReport
                ) -> dict[str, Any]:
        batch, probes = split_probes(records, report)
        return {
            **steady_rate(batch, report.phases[0], plan.params["window_s"]),
            "enqueue_per_s": preload_enqueue_per_s(report.phases[0]),
            **probes,
            **job_counts(batch),
        }

    def tables(self, kit: ReportKit) -> list[Any]:
        """One column per payload size the run measured (the grid's or --payload-sizes),
        smallest first, so the table reads as the drop from the smallest job to the largest."""
        columns = [kit.column(f"jobs/s at {kit.fmt_bytes(size)}", {"payload_bytes": size},
                              "jobs_per_s", extra=self._above_ceiling(kit, size))
                   for size in sorted(kit.numeric_params("payload_bytes"))]
        return [kit.table("Payload: throughput by payload size", columns,
                          f"Higher is better. {STEADY_TABLE_NOTE} ABOVE <ceiling>: in that "
                          "round the library drained faster than the raw client on its "
                          "broker at that size, so the ceiling was not one there (often a "
                          "ceiling whose window the driver had to feed: producer-bound)")]

    @staticmethod
    def _above_ceiling(kit: ReportKit, size: float) -> Callable[[Any], str]:
        return lambda row: kit.above_ceiling(kit.cells, row["backend"], "payload_bytes", size,
                                             row["profile"])

    def charts(self, kit: ReportKit) -> list[Any]:
        return [size_chart(kit)] if kit.has_data else []


def size_chart(kit: ReportKit) -> Any:
    """Drain rate and the idle probes' median latency against the payload size."""
    frame = kit.frame
    sizes = kit.numeric_params("payload_bytes")
    fig = kit.figure(11, 4.6)
    axes = fig.subplots(1, 2)
    # the idle probes are a few jobs (5 quick, 10 full): their median, not a p99 that
    # would be their largest
    panels = ((axes[0], "jobs_per_s", "completed jobs per second (log)", "Throughput"),
              (axes[1], "latency_ms.p50", "median queue latency, ms (log)",
               "median latency, idle probes"))
    absent: list[Any] = []
    marked = ringed = False
    for ax, metric, ylabel, title in panels:
        for series, backend, rows, ok in kit.present(frame, metric, absent):
            ok = ok.sort_values("params.payload_bytes")
            ax.errorbar(ok["params.payload_bytes"], ok[metric], yerr=kit.errors(ok, metric),
                        marker="o", capsize=3, color=kit.colour(backend), label=series,
                        linestyle=kit.line_style(series))
            if metric == "jobs_per_s":
                ringed |= kit.flag_rings(ax, ok, list(ok["params.payload_bytes"]),
                                         list(ok[metric]), backend)
            marked |= kit.edge_marks(
                ax, rows[~rows.index.isin(ok.index)]["params.payload_bytes"], backend)
        kit.bytes_axis(ax, sizes)
        kit.plain_log_y(ax)
        ax.set_xlabel("payload per job (log)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, which="major", alpha=0.3)
    kit.legend_outside(axes[1], kit.gap_handles(marked, flagged=ringed) + absent)
    fig.suptitle("Payload size: throughput and latency")
    notes = kit.gap_notes(frame, lambda r: kit.fmt_bytes(kit.param(r, "payload_bytes")))
    return kit.chart("payload", "Throughput and idle latency vs payload size", fig,
                     "Left: steady-state drain rate. Right: the median latency of a few single "
                     "jobs sent one at a time on an idle system (too few for a p99). Error "
                     "bars: min..max across rounds. A ring marks a rate that was unstable or "
                     "producer-bound in a round.", notes)


PAYLOAD = Payload()
