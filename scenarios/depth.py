"""Depth: how a queue behaves with 10,000, 100,000 and 1,000,000 jobs waiting.

Per depth, one cell (harness/driver/depth.py): the workers stop, the jobs
are enqueued (the enqueue rate) while the broker's memory is read along the
way (bytes per job at that depth), then the workers start, one probe job is
sent behind the backlog, and the drain is counted over a window of W
seconds (the throughput scenario's) after a warm-up: the drain rate at
depth. For a FIFO queue the probe's queue latency should be about
backlog / drain rate; it is measured when the backlog ahead of it can drain
within the cell's time cap, and otherwise stated as that expectation.

Where the library runs one worker on several queues or priorities, the
depth cells' workers also consume a second queue (the cells' `second_queue`
option; every other scenario's workers keep their one queue), and a second
probe goes there right after the first: how long a job waits when it does
not have to queue behind the backlog. `second_queue` names the library's
mechanism (RQ's queue order, Celery's and Dramatiq's consumer per queue), or
"none" for a backend that has none.

Two caps keep a cell bounded, both stated in its metrics: a memory budget
(the fill stops before a batch would take the broker past it) and a time
cap (the enqueue limit plus the drain limit); a depth a cap stopped says
which. Noop jobs: the figures are about the queue, not the work.
In-process backends have no broker to hold a backlog: no cells.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pandas as pd

from adapters import BACKENDS
from adapters.base import SECOND_QUEUE_OPTION
from core.protocol import DriverReport
from core.recorder import Event
from scenarios.base import CellFailed, CellPlan, Grids, Metric, RunOptions, Scenario
from scenarios.common import (
    DRAIN_METRICS,
    ENQUEUE_PER_S,
    STEADY_METRICS,
    events,
    preload_enqueue_per_s,
    steady_rate,
)
from scenarios.presentation import ReportKit
from scenarios.throughput import sustained

MIB = 1024 * 1024


@dataclass(frozen=True)
class Grid:
    depths: tuple[int, ...]
    memory_budget_mib: int  # broker memory a fill may add
    enqueue_limit_s: float  # the fill stops after this
    drain_limit_s: float  # from the workers' start: warm-up, window, probe wait


GRIDS = Grids(quick=Grid((1_000, 10_000), 512, 20.0, 25.0),
              full=Grid((10_000, 100_000, 1_000_000), 4096, 300.0, 120.0))
SETUP_S = 90.0  # beyond the caps: workers' start, purging a deep queue afterwards


class Depth(Scenario):
    name = "depth"
    title = "Depth"
    description = "enqueue rate, memory/job, drain rate and probe latency with 10k..1M queued"
    order = 70
    in_all = False  # minutes per backend: run by name, not in every `all` run
    stops_workers = True
    grids = GRIDS
    metrics = {
        "queued": Metric("jobs", doc="jobs queued ahead of the probe (below the depth when "
                         "a cap stopped the fill)"),
        "capped_by": Metric(doc="the cap that stopped the fill short of the depth, or null"),
        "enqueue_per_s": ENQUEUE_PER_S,
        "bytes_per_job": Metric("bytes", "lower", doc="broker memory delta / jobs queued"),
        "broker_bytes": Metric("bytes", "lower", doc="total broker memory delta"),
        "measured": Metric(doc='how, e.g. "redis used_memory"'),
        **DRAIN_METRICS,
        "stability_cv": STEADY_METRICS["stability_cv"],
        "unstable": STEADY_METRICS["unstable"],
        "drained": Metric(doc="bool: the whole backlog ended inside the window (cut short)"),
        "probe_latency_s": Metric("s", "lower", doc="queue latency of the probe sent "
                                  "behind the backlog; null when the cap came first"),
        "probe_expected_s": Metric("s", doc="queued / jobs_per_s: what a FIFO queue gives"),
        "probe_reached": Metric(doc="bool: the probe started within the time cap"),
        "second_queue": Metric(doc='how the workers serve a second queue, e.g. "rq: queue '
                               'order second,default", or "none"'),
        "second_probe_latency_s": Metric("s", "lower", doc="queue latency of a probe sent "
                                         "on the second queue right after the first; null "
                                         "with no second queue or when the cap came first"),
        "memory_budget_bytes": Metric("bytes", doc="the stated broker memory budget"),
        "time_cap_s": Metric("s", doc="the stated cap: enqueue limit + drain limit"),
    }

    def not_planned(self, backend: str) -> str | None:
        if BACKENDS[backend].broker is None:
            return "it fills a broker's queue, and this backend's queue is the driver's memory"
        return None

    def plan(self, backend: str, options: RunOptions) -> list[CellPlan]:
        if self.not_planned(backend):
            return []
        grid = self.grids.pick(options)
        steady, _ = sustained(options)
        return [CellPlan(
            scenario=self.name, backend=backend, params={"depth": depth},
            workload={"spec": {"kind": "noop", "ms": 0}, "phases": [{
                "type": "depth", "jobs": depth, "enqueue_limit_s": grid.enqueue_limit_s,
                "max_broker_bytes": grid.memory_budget_mib * MIB,
                "warmup_s": steady["warmup_s"], "window_s": steady["window_s"],
                "time_limit_s": grid.drain_limit_s}]},
            timeout_s=grid.enqueue_limit_s + grid.drain_limit_s + SETUP_S,
            profile=options.profile, options={SECOND_QUEUE_OPTION: True},
        ) for depth in grid.depths]

    def analyze(self, plan: CellPlan, records: pd.DataFrame, report: DriverReport
                ) -> dict[str, Any]:
        phase = report.phases[0]
        spec = plan.workload["phases"][0]
        queued = phase.preloaded or 0
        if not queued:
            raise CellFailed(phase.unsent_reason or "no job was queued")
        drained = (phase.window_min_backlog or 0) <= 0
        if drained:  # the window ended when the last job did
            last = events(records, Event.END)["t_ns"].max()
            phase = dataclasses.replace(phase, window_end_ns=int(last) + 1)
        rate = steady_rate(records, phase, spec["window_s"])
        before, after = phase.memory_before or {}, phase.memory_after or {}
        grown = (after["bytes"] - before["bytes"]
                 if before.get("bytes") is not None and after.get("bytes") is not None
                 else None)
        return {
            "queued": queued, "capped_by": phase.unsent_reason if phase.unsent else None,
            "enqueue_per_s": preload_enqueue_per_s(phase),
            "bytes_per_job": grown / queued if grown is not None else None,
            "broker_bytes": grown, "measured": after.get("method"),
            **{name: rate[name] for name in (*DRAIN_METRICS, "stability_cv", "unstable")},
            "drained": drained,
            **probe(records, phase.first_id + queued, queued / rate["jobs_per_s"]),
            "second_queue": phase.second_queue or "none",
            "second_probe_latency_s": (queue_latency(records, phase.first_id + queued + 1)
                                       if phase.second_queue else None),
            "memory_budget_bytes": spec["max_broker_bytes"],
            "time_cap_s": spec["enqueue_limit_s"] + spec["time_limit_s"],
        }

    def headline(self, metrics: dict[str, Any]) -> str:
        latency = metrics["probe_latency_s"]
        waited = (f"{latency:,.2f} s" if latency is not None
                  else f"not reached (expected {metrics['probe_expected_s']:,.0f} s)")
        capped = f" (capped: {metrics['capped_by']})" if metrics["capped_by"] else ""
        second = metrics.get("second_probe_latency_s")
        beside = ("no second queue" if metrics.get("second_queue", "none") == "none" else
                  f"second queue {second:,.2f} s" if second is not None else
                  "second queue not reached")
        return (f"{metrics['queued']:,} queued{capped}, {metrics['jobs_per_s']:,.0f} jobs/s "
                f"drain, probe {waited}, {beside}")

    def tables(self, kit: ReportKit) -> list[Any]:
        depths = kit.numeric_params("depth")
        note = ("A depth a cap stopped shows the jobs really queued; the caps are in "
                "the metrics (memory_budget_bytes, time_cap_s)")

        def queued_text(row: pd.Series) -> str:
            queued = kit.value(row, "queued")
            wanted = kit.param(row, "depth")
            return f" ({queued:,.0f} queued)" if queued is not None and queued < wanted else ""

        def table(title: str, metric: str, extra: Any, better: str) -> Any:
            columns = [kit.column(f"{d:,.0f} queued", {"depth": d}, metric, extra=extra)
                       for d in depths]
            return kit.table(f"Depth: {title}", columns, f"{better}. {note}.",
                             slug=f"depth-{metric}")

        def no_second_queue(row: pd.Series) -> str | None:
            return "no second queue" if row.get("second_queue") == "none" else None

        def not_reached(row: pd.Series) -> str | None:
            expected = kit.value(row, "probe_expected_s")
            return ("not reached within the time cap"
                    + (f" (FIFO: {expected:,.0f} s)" if expected is not None else ""))

        probe_columns = [kit.column(f"{d:,.0f} queued: {what}", {"depth": d}, metric,
                                    extra=queued_text, absent=absent)
                         for d in depths for what, metric, absent in (
                             ("measured", "probe_latency_s", not_reached),
                             ("FIFO", "probe_expected_s", None),
                             ("second queue", "second_probe_latency_s", no_second_queue))]

        return [table("enqueue rate (jobs/s) into a deep queue", "enqueue_per_s", queued_text,
                      "Higher is better"),
                table("broker memory per queued job", "bytes_per_job", queued_text,
                      "Lower is better"),
                table("drain rate (jobs/s) at depth", "jobs_per_s", queued_text,
                      "Higher is better"),
                kit.table("Depth: queue latency of a probe behind the backlog (s)",
                          probe_columns, "Lower is better. FIFO: what a first-in first-out "
                          "queue gives, queued / drain rate; no measured figure: the probe "
                          "would not start within the time cap. Second queue: a probe sent "
                          "right after the first on a second queue the same workers consume "
                          "(the mechanism is the second_queue metric: RQ's queue order puts "
                          "it first; Celery and Dramatiq consume both queues, so it waits "
                          f"only behind what the workers prefetched). {note}.",
                          slug="depth-probe")]


def queue_latency(records: pd.DataFrame, job_id: int) -> float | None:
    """One job's queue latency (START - INTENDED, s); None if it never started."""
    mine = records[records["job_id"] == job_id]
    intended = events(mine, Event.INTENDED)["t_ns"]
    started = events(mine, Event.START)["t_ns"]
    return ((started.min() - intended.min()) / 1e9
            if len(intended) and len(started) else None)


def probe(records: pd.DataFrame, probe_id: int, expected_s: float) -> dict[str, Any]:
    """The probe job's queue latency, and what FIFO predicts."""
    latency = queue_latency(records, probe_id)
    return {"probe_latency_s": latency, "probe_expected_s": expected_s,
            "probe_reached": latency is not None}


DEPTH = Depth()
