"""Throughput by job duration at equal total slots, in a steady state.

A batch is preloaded before the workers start (its enqueue rate is the
cell's enqueue_per_s); then the driver keeps a backlog queued (a backlog
target that follows the measured rate) through a warm-up and a counted
window of W seconds (2 s quick, 8 s full, --window), the same for every
backend, fast or slow. Completions per second of the window give the
figure and its stability. efficiency = jobs_per_s / (slots / duration).
Noop jobs carry the payload scenario's smallest payload and are followed by
idle probes, so that scenario reuses the noop cell instead of running it again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.protocol import DriverReport, SustainedPhase
from scenarios.base import CellPlan, Grids, Metric, RunOptions, Scenario
from scenarios.common import (
    ENQUEUE_PER_S,
    JOB_COUNT_METRICS,
    PROBE_METRICS,
    STEADY_METRICS,
    STEADY_TABLE_NOTE,
    idle_probe_phase,
    job_counts,
    preload_enqueue_per_s,
    same_round_cell,
    split_probes,
    steady_rate,
)
from scenarios.presentation import ReportKit


@dataclass(frozen=True)
class Grid:
    durations_ms: tuple[float, ...]
    warmup_s: float  # not counted
    window_s: float  # counted: W
    budget_mib: int  # payload a cell's backlog holds in the broker at most


# A full run's warm-up is as short as a quick one's: the workers are warm after a group's
# first cell, and where the warm-up cannot calibrate the fill a 0.5 s probe does.
GRIDS = Grids(quick=Grid((0, 10), 0.5, 2.0, 64),  # the noop ceiling and one real job size
              full=Grid((0, 1, 10, 100), 0.5, 8.0, 256))
# What a noop job carries: the payload scenario's smallest size, so its cell at that size
# is this scenario's noop cell (reused, see scenarios/payload.py).
NOOP_PAYLOAD_BYTES = 64


def window_of(options: RunOptions) -> float:
    """W: the counted window, from --window or the grid."""
    return options.window_s or GRIDS.pick(options).window_s


def sustained(options: RunOptions) -> tuple[dict[str, Any], float]:
    """(phase, seconds it lasts) of a steady-state window; payload and depth cells use it."""
    grid = GRIDS.pick(options)
    window = window_of(options)
    phase = {"type": "sustained", "warmup_s": grid.warmup_s, "window_s": window,
             "time_limit_s": grid.warmup_s + window,
             "max_backlog_bytes": grid.budget_mib * 1024 * 1024}
    return phase, grid.warmup_s + window


def noop_workload(payload_bytes: int, options: RunOptions, probes: bool = True
                  ) -> tuple[dict[str, Any], float]:
    """(workload, seconds at most) of a noop window carrying `payload_bytes` per job, then
    (with `probes`) idle probes of the same jobs: the noop throughput cell and every
    payload cell."""
    phase, seconds = sustained(options)
    if payload_bytes <= NOOP_PAYLOAD_BYTES:
        # the byte budget is for large payloads: 64 B jobs are held by the job cap alone
        # (8 million x 64 B = 512 MiB), or the fastest ceiling's fill would stop at 4.2
        # million of them and its window be topped up (docs/methodology.md, "Fill")
        phase["max_backlog_bytes"] = SustainedPhase().max_jobs * NOOP_PAYLOAD_BYTES
    phases = [phase]
    if probes:
        phases.append(idle_probe_phase(options))
        seconds += phases[-1]["time_limit_s"]
    return {"spec": {"kind": "noop", "ms": 0}, "payload_bytes": payload_bytes,
            "phases": phases}, seconds


def same_round_throughput(finished: list[dict[str, Any]], plan: CellPlan, round_no: int,
                          **params: Any) -> dict[str, Any] | None:
    """The ok throughput cell of `plan`'s backend and profile in this round whose params
    include `params`, if one has ended: a later cell that would measure the same reuses it."""
    return same_round_cell(finished, plan, round_no, THROUGHPUT_NAME, **params)


def steady_workload(duration_ms: float, options: RunOptions, probes: bool = True
                    ) -> tuple[dict[str, Any], float]:
    """(workload, seconds at most) of a throughput cell. The latency scenario's `max` cell
    is the noop one, which lets it reuse the throughput cell; `probes=False` leaves out
    the idle probes where only the window counts (scaling, the layout sweep)."""
    if duration_ms == 0:
        return noop_workload(NOOP_PAYLOAD_BYTES, options, probes)
    phase, seconds = sustained(options)
    return {"spec": {"kind": "sleep", "ms": duration_ms}, "phases": [phase]}, seconds


THROUGHPUT_NAME = "throughput"


class Throughput(Scenario):
    name = THROUGHPUT_NAME
    title = "Throughput"
    description = "jobs/s by job duration (0, 1, 10, 100 ms sleep) at equal slots"
    reads_options = ("durations_ms",)
    order = 10
    option_params = ("slots", "window_s")
    grids = GRIDS
    metrics = {
        **STEADY_METRICS,
        "enqueue_per_s": ENQUEUE_PER_S,
        "efficiency": Metric("", "higher", doc="jobs_per_s / (slots / duration); null for 0 ms"),
        "ideal_jobs_per_s": Metric("jobs/s", doc="slots / duration"),
        **PROBE_METRICS,  # noop cells only
        **JOB_COUNT_METRICS,
    }

    def plan(self, backend: str, options: RunOptions) -> list[CellPlan]:
        cells = []
        for duration in options.durations_ms or self.grids.pick(options).durations_ms:
            workload, seconds = steady_workload(duration, options)
            cells.append(CellPlan(
                scenario=self.name, backend=backend,
                params={"duration_ms": duration, "slots": options.slots,
                        "window_s": window_of(options)},
                workload=workload, timeout_s=seconds + 90, profile=options.profile,
            ))
        return cells

    def analyze(self, plan: CellPlan, records: pd.DataFrame, report: DriverReport
                ) -> dict[str, Any]:
        phase = report.phases[0]
        records, probes = split_probes(records, report)
        rate = steady_rate(records, phase, plan.params["window_s"])
        duration_ms = plan.params["duration_ms"]
        ideal = plan.params["slots"] / (duration_ms / 1000) if duration_ms else None
        return {
            **rate,
            "enqueue_per_s": preload_enqueue_per_s(phase),
            "efficiency": rate["jobs_per_s"] / ideal if ideal else None,
            "ideal_jobs_per_s": ideal,
            **probes,
            **job_counts(records),
        }

    def tables(self, kit: ReportKit) -> list[Any]:
        frame = kit.frame
        columns = []
        for duration in kit.numeric_params("duration_ms"):
            label = "no-op jobs" if duration == 0 else f"{kit.fmt_num(duration)} ms jobs"
            ideal = frame[frame["params.duration_ms"] == duration].get("ideal_jobs_per_s")
            if ideal is not None and ideal.notna().any():
                label += f" (ideal {kit.fmt('ideal_jobs_per_s', float(ideal.dropna().iloc[0]))})"
            columns.append(kit.column(label, {"duration_ms": duration}, "jobs_per_s"))
        return [kit.table("Throughput: completed jobs/s by job duration", columns,
                          "Higher is better; every backend has the same number of slots. "
                          + STEADY_TABLE_NOTE)]

    def charts(self, kit: ReportKit) -> list[Any]:
        return [duration_chart(kit)] if kit.has_data else []


def duration_chart(kit: ReportKit) -> Any:
    """jobs/s against job duration on log axes, the no-op jobs apart on the left."""
    from matplotlib.ticker import NullLocator

    frame = kit.frame
    durations = kit.numeric_params("duration_ms")
    positive = [d for d in durations if d > 0]
    zero_x = (positive[0] if positive else 1.0) / 10

    def xpos(d: float) -> float:
        return d if d > 0 else zero_x

    fig = kit.figure(9, 5)
    ax = fig.add_subplot()
    absent: list[Any] = []
    marked = ringed = False
    for series, backend, rows, ok in kit.present(frame, "jobs_per_s", absent):
        ok = ok.sort_values("params.duration_ms")
        pos = ok[ok["params.duration_ms"] > 0]
        ax.errorbar(pos["params.duration_ms"], pos["jobs_per_s"],
                    yerr=kit.errors(pos, "jobs_per_s"), color=kit.colour(backend), marker="o",
                    capsize=3, label=series, linestyle=kit.line_style(series))
        zero = ok[ok["params.duration_ms"] == 0]
        ax.errorbar([zero_x] * len(zero), zero["jobs_per_s"],
                    yerr=kit.errors(zero, "jobs_per_s"), color=kit.colour(backend), marker="s",
                    capsize=3, linestyle="none")
        ringed |= kit.flag_rings(ax, ok, [xpos(d) for d in ok["params.duration_ms"]],
                                 list(ok["jobs_per_s"]), backend)
        bad = rows[~rows.index.isin(ok.index)]
        marked |= kit.edge_marks(ax, [xpos(d) for d in bad["params.duration_ms"]], backend)
    notes = kit.gap_notes(frame, lambda r: f"{kit.fmt_num(kit.param(r, 'duration_ms'))} ms")
    slots = kit.param(frame.iloc[0], "slots") if "params.slots" in frame else None
    if positive and slots:
        # one duration (a quick run's 10 ms) would give a line of no length: a short stroke
        low, high = ((positive[0], positive[-1]) if len(positive) > 1
                     else (positive[0] / 1.5, positive[0] * 1.5))
        xs = np.geomspace(low, high, 50)
        ax.plot(xs, slots * 1000 / xs, color="black", linestyle="--", linewidth=1,
                label=f"ideal: {slots} slot{'' if slots == 1 else 's'} / duration")
    ax.set_xscale("log")
    kit.plain_log_y(ax)
    ticks = ([zero_x] if 0 in durations else []) + positive
    ax.set_xticks(ticks, (["0 ms\n(no-op)"] if 0 in durations else [])
                  + [f"{kit.fmt_num(d)} ms" for d in positive])
    ax.xaxis.set_minor_locator(NullLocator())
    if 0 in durations and positive:
        ax.axvline(math.sqrt(zero_x * positive[0]), color="0.75", linestyle=":", linewidth=1)
    ax.set_xlim(zero_x / 2, (positive[-1] if positive else 1) * 2)
    ax.set_xlabel("job duration (sleep, log scale; no-op plotted apart on the left)")
    ax.set_ylabel("completed jobs per second (log scale)")
    ax.set_title(f"Throughput vs job duration ({slots} slot{'' if slots == 1 else 's'} per "
                 "backend)")
    ax.grid(True, which="major", alpha=0.3)
    kit.legend_outside(ax, kit.gap_handles(marked, flagged=ringed) + absent)
    return kit.chart("throughput_vs_duration", "Throughput vs job duration", fig,
                     "Error bars: min..max across rounds. The dashed line is the most any "
                     "backend can do: slots / duration. A ring marks a figure that was unstable "
                     "or producer-bound in a round.", notes)


THROUGHPUT = Throughput()
