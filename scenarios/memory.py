"""Memory per queued job: enqueue N jobs with no worker running.

Memory is read before and after, each reading the median of three samples
(one with --quick: a RabbitMQ reading boots a CLI VM, about a second;
harness/memprobe.py). The figure is the queue's own memory: Redis MEMORY
USAGE of the keys named after the queue, RabbitMQ's queue processes plus the
message bytes they keep in RAM (bytes of persistent messages, which also go
to disk, apart), PostgreSQL's table sizes, and for in-process asyncio (real
pending tasks, each with its own payload) the driver's Python heap. The
broker's total (Redis used_memory, RabbitMQ's Erlang VM) is kept beside it.
bytes_per_job = queue delta / N, overhead = bytes_per_job - payload.

Per backend, a zero-job control cell runs the same steps first; its deltas
are reported with every cell of its round (`control.*`), never subtracted.
Job counts (--memory-jobs) are capped by a stated budget of payload bytes
per cell; a capped cell says so in its params.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.protocol import DriverReport
from core.words import counted
from scenarios.base import CellFailed, CellPlan, Grids, Metric, RunOptions, Scenario
from scenarios.common import same_round_cell
from scenarios.presentation import ReportKit

MIB = 1024 * 1024
CONTROL_OPTION = "memory_control"  # the control cell's deltas, handed to the cells after it
CLAIM_JOBS = 100_000  # the seed claim: "100,000 tasks take about 100 MB"
# A control (no job queued) that moved by this share of a cell's total or more: the cell's
# figure is within the broker's own drift, and the report does not rank it.
NOISY_SHARE = 0.25


MIN_ENQUEUE_PER_S = 100


@dataclass(frozen=True)
class Grid:
    sizes: tuple[int, ...]  # payload bytes per job
    most_jobs: int  # jobs per cell unless --memory-jobs says otherwise
    budget_mib: int  # payload queued per cell at most (jobs x payload)
    samples: int  # readings before and after; each figure is their median


GRIDS = Grids(quick=Grid((1024,), 2000, 64, 1),
              # two points: the per-job overhead and how it scales with size; the
              # budget lets 100,000 jobs of 16 KiB run (--memory-jobs 100000)
              full=Grid((64, 16 * 1024), 5000, 2048, 3))


def _delta(before: dict[str, Any], after: dict[str, Any], name: str) -> int | None:
    if before.get(name) is None or after.get(name) is None:
        return None
    return int(after[name] - before[name])


class Memory(Scenario):
    name = "memory"
    title = "Memory per queued job"
    description = "broker memory per queued job (no workers) at several payload sizes"
    handoff_options = (CONTROL_OPTION,)
    reads_options = ("payload_sizes", "memory_jobs")
    order = 40
    measures_speed = False
    stops_workers = True
    grids = GRIDS
    metrics = {
        "bytes_per_job": Metric("bytes", "lower", doc="queue_bytes / jobs queued"),
        "overhead_bytes_per_job": Metric("bytes", "lower", doc="bytes_per_job - payload"),
        "queue_bytes": Metric("bytes", "lower", doc="the queue's own memory delta (Redis "
                              "MEMORY USAGE of its keys, RabbitMQ queue memory + message "
                              "bytes in RAM; PostgreSQL tables, asyncio heap: the total)"),
        "disk_bytes_per_job": Metric("bytes", "lower", doc="RabbitMQ: persistent message "
                                     "bytes (on disk) delta / jobs; null elsewhere"),
        "broker_bytes": Metric("bytes", "lower", doc="total broker memory delta (Redis "
                               "used_memory, RabbitMQ VM total)"),
        "broker_bytes_per_job": Metric("bytes", "lower", doc="broker_bytes / jobs queued"),
        "control.*": Metric("bytes", doc="the zero-job control cell's deltas in this round "
                            "(queue_bytes, broker_bytes), not subtracted; null: no control"),
        "noisy": Metric(doc="bool: the control moved by NOISY_SHARE (a quarter) or more of "
                        "this cell's total: the figure is not ranked"),
        "whole_broker": Metric(doc="bool: no reading of the queue alone (a RabbitMQ quorum "
                               "queue): bytes_per_job is the whole broker's growth"),
        "samples.*": Metric("bytes", doc="the samples of each reading (3; 1 with --quick), "
                            "before and after"),
        "measured": Metric(doc='how, e.g. "redis MEMORY USAGE ..., median of 3 samples"'),
    }

    def _cell(self, backend: str, options: RunOptions, params: dict[str, Any],
              payload_bytes: int, jobs: int) -> CellPlan:
        return CellPlan(
            scenario=self.name, backend=backend, params=params,
            workload={"spec": {"kind": "noop", "ms": 0}, "payload_bytes": payload_bytes,
                      "phases": [{"type": "fill", "jobs": jobs,
                                  "samples": self.grids.pick(options).samples}]},
            # one call per job with publisher confirms (taskiq-rabbitmq) went as slow as
            # 190 jobs/s on a busy 2-core machine: allow 100/s before calling it hung
            timeout_s=180 + jobs / MIN_ENQUEUE_PER_S, profile=options.profile,
        )

    def plan(self, backend: str, options: RunOptions) -> list[CellPlan]:
        """The zero-job control, then each payload size at each job count."""
        grid = self.grids.pick(options)
        budget = grid.budget_mib * MIB
        cells = [self._cell(backend, options, {"jobs": 0, "control": True}, 0, 0)]
        planned: set[tuple[int, int]] = set()
        for size in options.payload_sizes or grid.sizes:
            for asked in options.memory_jobs or (grid.most_jobs,):
                jobs = min(asked, budget // size)
                if (size, jobs) in planned:
                    continue
                planned.add((size, jobs))
                params: dict[str, Any] = {"payload_bytes": size, "jobs": jobs}
                if jobs < asked:
                    params.update(jobs_asked=asked, capped_by_budget_mib=grid.budget_mib)
                cells.append(self._cell(backend, options, params, size, jobs))
        return cells

    def resolve(self, plan: CellPlan, finished: list[dict[str, Any]], round_no: int
                ) -> CellPlan:
        """Hand the deltas of this round's control cell to the cell, for its metrics."""
        if plan.params.get("control"):
            return plan
        cell = same_round_cell(finished, plan, round_no, self.name, control=True)
        if cell is not None:
            control = {name: cell["metrics"].get(name) for name in ("queue_bytes", "broker_bytes")}
            return dataclasses.replace(plan, options={**plan.options, CONTROL_OPTION: control})
        return plan

    def analyze(self, plan: CellPlan, records: pd.DataFrame, report: DriverReport
                ) -> dict[str, Any]:
        phase = report.phases[0]
        before, after = phase.memory_before or {}, phase.memory_after or {}
        broker = _delta(before, after, "bytes")
        if broker is None:
            raise CellFailed(after.get("method", "no memory reading"))
        own_name = "queue_bytes" if "queue_bytes" in after else "bytes"
        own = _delta(before, after, own_name)
        if own is None:
            raise CellFailed(after.get("queue_method", "no reading of the queue's memory"))
        disk = _delta(before, after, "disk_bytes")
        jobs = plan.params["jobs"]

        def per_job(total: int | None) -> float | None:
            return total / jobs if jobs and total is not None else None

        control = plan.options.get(CONTROL_OPTION) or {}
        drift = control.get(own_name if own_name == "queue_bytes" else "broker_bytes")
        readings = plan.workload["phases"][0].get("samples", 3)
        method = (after["queue_method"] if own_name == "queue_bytes" else
                  "; ".join(filter(None, (after.get("queue_method"), after["method"]))))
        return {
            "bytes_per_job": per_job(own),
            "overhead_bytes_per_job": own / jobs - plan.params["payload_bytes"] if jobs else None,
            "queue_bytes": own,
            "disk_bytes_per_job": per_job(disk),
            "broker_bytes": broker,
            "broker_bytes_per_job": per_job(broker),
            "control": {name: control.get(name) for name in ("queue_bytes", "broker_bytes")},
            "whole_broker": own_name == "bytes",
            "noisy": bool(jobs and own and drift is not None
                          and abs(drift) >= NOISY_SHARE * abs(own)),
            "samples": {"before": before.get("samples") or {},
                        "after": after.get("samples") or {}},
            "measured": f"{method}; median of {counted(readings, 'sample')} before and after",
        }

    def headline(self, metrics: dict[str, Any]) -> str:
        got = metrics.get("bytes_per_job")
        if isinstance(got, int | float):
            return f"{got:,.0f} B/job"
        return (f"control: queue {metrics['queue_bytes']:+,} B, "
                f"broker {metrics['broker_bytes']:+,} B")

    def tables(self, kit: ReportKit) -> list[Any]:
        sizes = kit.numeric_params("payload_bytes")
        if len(sizes) > 3:
            sizes = sorted({sizes[0], kit.nearest(sizes, 1024) or sizes[0], sizes[-1]})

        def per_claim(row: pd.Series) -> str:
            got = kit.value(row, "bytes_per_job")
            if got is None or kit.param(row, "jobs") != CLAIM_JOBS:
                return ""
            return f" = {got * CLAIM_JOBS / 1e6:,.0f} MB per {CLAIM_JOBS:,} jobs"

        columns = []
        for size in sizes:
            at_size = kit.frame[kit.frame["params.payload_bytes"] == size]
            for jobs in kit.numeric_params("jobs", at_size):
                columns.append(kit.column(
                    f"per job at {kit.fmt_bytes(size)} payload, {jobs:,.0f} queued",
                    {"payload_bytes": size, "jobs": jobs}, "bytes_per_job", extra=per_claim))
        return [kit.table("Memory: the queue's bytes per queued job", columns,
                          "Lower is better; no worker runs while the jobs are queued. "
                          f"At {CLAIM_JOBS:,} jobs the figure is also given in MB for "
                          f"{CLAIM_JOBS:,} queued jobs (the claim: about 100 MB). A count "
                          "below the one asked was capped by the payload budget "
                          "(params capped_by_budget_mib)")]

    def charts(self, kit: ReportKit) -> list[Any]:
        return [size_chart(kit)] if kit.has_data else []


NOISY_FLAGS = ("noisy_rounds",)  # per report row (reports/data.py)
NOISY_NOTE = "noisy in a round: the zero-job control moved by a quarter of it or more"


def deepest(frame: pd.DataFrame) -> pd.DataFrame:
    """Per series and payload size the row with the most jobs queued, in frame order
    (the control cells, without a payload, drop out)."""
    if "params.payload_bytes" not in frame:
        return frame
    rows = frame[frame["params.payload_bytes"].notna()]
    most = rows.groupby(["series", "params.payload_bytes"], sort=False)["params.jobs"].idxmax()
    return rows[rows.index.isin(most)]


def size_chart(kit: ReportKit) -> Any:
    """Bytes per queued job against the payload size, the payload itself as reference
    (one bar per backend when the run measured a single size)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    frame = deepest(kit.frame)
    sizes = kit.numeric_params("payload_bytes")
    if len(sizes) == 1:
        return one_size_chart(kit, frame, sizes[0])
    fig = kit.figure(9, 5)
    ax = fig.add_subplot()
    absent: list[Any] = []
    marked = ringed = False
    for series, backend, rows, ok in kit.present(frame, "bytes_per_job", absent):
        ok = ok.sort_values("params.payload_bytes")
        ax.errorbar(ok["params.payload_bytes"], ok["bytes_per_job"],
                    yerr=kit.errors(ok, "bytes_per_job"), marker="o", capsize=3,
                    color=kit.colour(backend), label=series, linestyle=kit.line_style(series))
        ringed |= kit.flag_rings(ax, ok, list(ok["params.payload_bytes"]),
                                 list(ok["bytes_per_job"]), backend, NOISY_FLAGS)
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
    ax.set_ylabel("queue memory per queued job (log)")
    ax.set_title("Memory per queued job vs payload size")
    ax.grid(True, which="major", alpha=0.3)
    rings = kit.gap_handles(marked, flagged=ringed, ring_label=f"ring: {NOISY_NOTE}")
    kit.legend_outside(ax, rings + absent)
    notes = kit.gap_notes(frame, lambda r: kit.fmt_bytes(kit.param(r, "payload_bytes")))
    return kit.chart("memory", "Memory per queued job vs payload size", fig,
                     "Distance above the dashed line is the per-job overhead of the broker and "
                     "the library's message format.", notes)


def one_size_chart(kit: ReportKit, frame: pd.DataFrame, size: float) -> Any:
    """Bytes per queued job of each backend at the run's one payload size (a quick run's
    1 KiB): a bar each, the payload itself as a dashed line. A line against the size,
    as size_chart draws, would be one column of dots at the axis edge."""
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    absent: list[Any] = []
    bars = [(series, backend, ok) for series, backend, _rows, ok
            in kit.present(frame, "bytes_per_job", absent)]
    fig = kit.figure(9, 1.5 + 0.4 * max(len(bars), 1))
    ax = fig.add_subplot()
    hatched = False
    for place, (series, backend, ok) in enumerate(bars):
        value = float(ok["bytes_per_job"].iloc[0])
        noisy = kit.flagged_rows(ok.iloc[:1], NOISY_FLAGS)[0]
        hatched |= noisy
        ax.barh(place, value, xerr=kit.errors(ok, "bytes_per_job"), capsize=3,
                color=kit.colour(backend), label=series, hatch="//" if noisy else None,
                edgecolor="white" if noisy else None)
        ax.annotate(f" {kit.fmt_bytes(value)}", (value, place), va="center", fontsize=8)
    ax.set_yticks(range(len(bars)), [series for series, _, _ in bars])
    ax.invert_yaxis()  # the report's backend order, top down
    ax.axvline(size, color="black", linestyle="--", linewidth=1,
               label="payload size itself (reference)")
    right = ax.get_xlim()[1] * 1.12  # room for the figures beside the bars
    ax.set_xlim(0, right)
    # ticks at whole multiples of the payload (1, 2, 3 KiB), at most about eight
    ax.xaxis.set_major_locator(MultipleLocator(size * math.ceil(right / size / 8)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: kit.fmt_bytes(v)))
    ax.set_xlabel(f"queue memory per queued job, {kit.fmt_bytes(size)} payload")
    ax.set_title(f"Memory per queued job at {kit.fmt_bytes(size)} payload")
    ax.grid(True, axis="x", alpha=0.3)
    handles = [h for h in ax.get_legend_handles_labels()[0]
               if h.get_label().startswith("payload size")]
    if hatched:
        handles.append(Patch(facecolor="0.6", edgecolor="white", hatch="//",
                             label=f"hatched: {NOISY_NOTE}"))
    ax.legend(handles=handles + absent, loc="lower right", fontsize=8)
    notes = kit.gap_notes(frame, lambda r: kit.fmt_bytes(kit.param(r, "payload_bytes")))
    return kit.chart("memory", f"Memory per queued job at {kit.fmt_bytes(size)} payload", fig,
                     "The bar's length beyond the dashed line is the per-job overhead of the "
                     "broker and the library's message format. Error bars: min..max across "
                     "rounds.", notes)


MEMORY = Memory()
