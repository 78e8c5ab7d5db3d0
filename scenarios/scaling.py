"""Throughput as the slots grow: noop and 10 ms jobs at 1, 2, 4, 8, 16 and 32 slots.

Each point is a throughput cell (scenarios/throughput.py: the same
steady-state window) run with its own slot count (CellPlan.slots), so the
runner gives it workers of its own. Per point: efficiency against the ideal
(slots / duration, 10 ms jobs) and against linear scaling from the smallest
point (1 slot by default): (jobs/s per slot) / (jobs/s per slot at the
smallest point). The latter needs two cells, so it is computed over the
aggregates (medians across rounds) by `with_linear_efficiency`, for the
report's tables and the "start more workers" claim (reports/claims.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from adapters import CEILINGS
from core.protocol import DriverReport
from scenarios.base import CellPlan, CellReused, Grids, Metric, RunOptions, Scenario
from scenarios.common import STEADY_TABLE_NOTE
from scenarios.presentation import ReportKit
from scenarios.throughput import THROUGHPUT, same_round_throughput, steady_workload, window_of

MIN_GAIN = 0.10  # a step up in slots "adds throughput" when jobs/s rise at least this much


@dataclass(frozen=True)
class Grid:
    slots: tuple[int, ...]
    durations_ms: tuple[float, ...]  # 0: noop, the per-job cost; 10 ms: work that waits


GRIDS = Grids(quick=Grid((1, 4, 16), (0, 10)),
              full=Grid((1, 2, 4, 8, 16, 32), (0, 10)))


class Scaling(Scenario):
    name = "scaling"
    title = "Scaling"
    description = "jobs/s of noop and 10 ms jobs at 1, 2, 4 ... 32 slots (--slots-sweep)"
    reads_options = ("slots_sweep",)
    order = 60
    option_params = ("window_s",)
    in_all = False  # minutes per backend: run by name, not in every `all` run
    grids = GRIDS
    metrics = {
        **THROUGHPUT.metrics,
        "per_slot_jobs_per_s": Metric("jobs/s", doc="jobs_per_s / slots (linear scaling "
                                      "keeps it constant)"),
        "cpu_count": Metric("", doc="CPUs of the machine that ran the cell"),
    }

    def plan(self, backend: str, options: RunOptions) -> list[CellPlan]:
        """Slot-major: both durations of a slot count share their workers."""
        cells = []
        for slots in options.slots_sweep or self.grids.pick(options).slots:
            for duration in self.grids.pick(options).durations_ms:
                workload, seconds = steady_workload(duration, options, probes=False)
                cells.append(CellPlan(
                    scenario=self.name, backend=backend,
                    params={"duration_ms": duration, "slots": slots,
                            "window_s": window_of(options)},
                    workload=workload, timeout_s=seconds + 90, profile=options.profile,
                    slots=slots,
                ))
        return cells

    def resolve(self, plan: CellPlan, finished: list[dict[str, Any]], round_no: int
                ) -> CellPlan:
        """The point at the run's slot count is the throughput cell of this round, when
        that ran: its result is reused."""
        cell = same_round_throughput(finished, plan, round_no, **{
            k: plan.params[k] for k in ("duration_ms", "slots", "window_s")})
        if cell is not None:
            raise CellReused(dict(cell, metrics={
                **cell["metrics"], **extra_metrics(plan.params["slots"],
                                                   cell["metrics"]["jobs_per_s"])}))
        return plan

    def analyze(self, plan: CellPlan, records: pd.DataFrame, report: DriverReport
                ) -> dict[str, Any]:
        metrics = THROUGHPUT.analyze(plan, records, report)
        return {**metrics, **extra_metrics(plan.params["slots"], metrics["jobs_per_s"])}

    def tables(self, kit: ReportKit) -> list[Any]:
        frame = with_linear_efficiency(kit.frame)
        tables = []
        for duration in kit.numeric_params("duration_ms"):
            rows = frame[frame["params.duration_ms"] == duration]
            columns = [kit.column(f"{slots:g} slot{'' if slots == 1 else 's'}",
                                  {"duration_ms": duration, "slots": slots},
                                  "jobs_per_s", extra=efficiency_text)
                       for slots in kit.numeric_params("slots", rows)]
            job = "no-op jobs" if duration == 0 else f"{kit.fmt_num(duration)} ms jobs"
            tables.append(kit.table(
                f"Scaling: completed jobs/s by slots, {job}", columns,
                "Higher is better. In brackets: share of the ideal (slots / duration) and "
                "of linear scaling from the smallest slot count (its jobs/s per slot times "
                f"the slots). {STEADY_TABLE_NOTE}",
                slug=f"scaling-{kit.fmt_num(duration)}ms", frame=rows))
        return tables

    def charts(self, kit: ReportKit) -> list[Any]:
        return [slots_chart(kit)] if kit.has_data else []


def extra_metrics(slots: int, jobs_per_s: float) -> dict[str, Any]:
    """What a scaling point adds to a throughput cell's metrics."""
    return {"per_slot_jobs_per_s": jobs_per_s / slots, "cpu_count": os.cpu_count()}


def with_linear_efficiency(frame: pd.DataFrame) -> pd.DataFrame:
    """Aggregates with `linear_efficiency`: jobs/s per slot over that of the smallest
    slot count of the same series and duration (NaN where it has no figure)."""
    out = frame.copy()
    out["linear_efficiency"] = np.nan
    if out.empty or "jobs_per_s" not in out:
        return out
    ok = out[(out["status"] == "ok") & out["jobs_per_s"].notna()]
    for _, rows in ok.groupby(["series", "params.duration_ms"], sort=False):
        base = rows.loc[rows["params.slots"].astype(float).idxmin()]
        per_slot = base["jobs_per_s"] / float(base["params.slots"])
        out.loc[rows.index, "linear_efficiency"] = (
            rows["jobs_per_s"] / rows["params.slots"].astype(float) / per_slot)
    return out


def efficiency_text(row: pd.Series) -> str:
    parts = []
    if pd.notna(row.get("efficiency")):
        parts.append(f"{row['efficiency']:.0%} of ideal")
    if pd.notna(row.get("linear_efficiency")):
        parts.append(f"{row['linear_efficiency']:.0%} of linear")
    return f" ({', '.join(parts)})" if parts else ""


def rises_up_to(points: list[tuple[float, float]], min_gain: float = MIN_GAIN) -> float:
    """The slot count up to which every step up raised jobs/s by at least `min_gain`.

    `points` are (slots, jobs/s) in any order; the smallest slot count when the
    first step already adds less.
    """
    ordered = sorted(points)
    reached = ordered[0][0]
    for (_, before), (slots, after) in zip(ordered, ordered[1:], strict=False):
        if after < before * (1 + min_gain):
            break
        reached = slots
    return reached


def slots_chart(kit: ReportKit) -> Any:
    """jobs/s against slots on log-log axes, one panel per job duration: the raw
    ceilings dashed, the ideal (slots / duration) and the machine's CPU count marked."""
    from matplotlib.ticker import FuncFormatter, NullFormatter, NullLocator

    frame = kit.frame
    durations = kit.numeric_params("duration_ms")
    slots = kit.numeric_params("slots")
    cpus = frame["cpu_count"].max() if "cpu_count" in frame else None
    fig = kit.figure(12, 5)
    axes = np.atleast_1d(fig.subplots(1, len(durations), sharex=True))
    absent: list[Any] = []
    marked = ringed = False
    notes: list[str] = []
    for ax, duration in zip(axes, durations, strict=True):
        part = frame[frame["params.duration_ms"] == duration]
        for series, backend, rows, ok in kit.present(part, "jobs_per_s", absent):
            ok = ok.sort_values("params.slots")
            ceiling = backend in CEILINGS
            ax.errorbar(ok["params.slots"], ok["jobs_per_s"], yerr=kit.errors(ok, "jobs_per_s"),
                        color=kit.colour(backend), marker="o", capsize=3,
                        linestyle="--" if ceiling else "-",
                        label=f"{series} (ceiling)" if ceiling else series)
            marked |= kit.edge_marks(ax, rows[~rows.index.isin(ok.index)]["params.slots"],
                                     backend)
            ringed |= kit.flag_rings(ax, ok, list(ok["params.slots"]), list(ok["jobs_per_s"]),
                                     backend)
        if duration > 0 and slots:
            xs = np.array(slots, dtype=float)
            ax.plot(xs, xs * 1000 / duration, color="black", linestyle=":", linewidth=1.5,
                    label="ideal: slots / duration")
        if cpus and pd.notna(cpus):
            ax.axvline(cpus, color="0.5", linestyle="-.", linewidth=1,
                       label=f"{cpus:g} CPUs (right of it: more slots than cores)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(slots, [f"{s:g}" for s in slots])
        ax.xaxis.set_minor_locator(NullLocator())
        kit.plain_log_y(ax)
        low, high = ax.get_ylim()
        ax.yaxis.set_minor_formatter(  # a range within one decade has no labelled major tick
            FuncFormatter(lambda v, _pos: kit.fmt_num(v, 2)) if high < 10 * low
            else NullFormatter())
        ax.set_xlabel("slots (jobs that may run at once, log scale)")
        ax.set_title("no-op jobs" if duration == 0 else f"{kit.fmt_num(duration)} ms jobs")
        ax.grid(True, which="major", alpha=0.3)
        notes += kit.gap_notes(part, lambda r, d=duration: (
            f"{kit.fmt_num(d)} ms, {kit.fmt_num(kit.param(r, 'slots'))} slots"))
    axes[0].set_ylabel("completed jobs per second (log scale)")
    kit.legend_outside(axes[-1], kit.gap_handles(marked, flagged=ringed) + absent)
    return kit.chart(
        "scaling_vs_slots", "Throughput vs slots", fig,
        "Error bars: min..max across rounds. Dashed: the raw broker clients (the most a "
        "Python client gets from that broker). Dotted: the most the slots allow. Right of "
        "the dash-dotted line there are more slots than CPUs: no-op jobs need only CPU, so "
        "a flat curve there is this machine's cores, not the library; 10 ms jobs mostly "
        "wait, so there more slots should still add throughput. A ring marks a figure "
        "that was unstable or producer-bound in a round.", notes)


SCALING = Scaling()
