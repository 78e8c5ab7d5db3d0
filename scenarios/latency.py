"""Open-loop latency: jobs sent on a fixed schedule, latency from the INTENDED time.

Per backend: a closed-loop "max" cell measures its own maximum rate; then
idle single jobs, fixed rates, and fractions of that maximum. Queue latency
is intended->start, end-to-end is intended->end, so a stall of the backend
(or of the producer) cannot hide (coordinated omission). A rate the backend
cannot sustain is reported as saturated with its backlog, without latency
figures. A rate the producer could not offer (it fell behind the schedule,
harness/driver/schedule.py) is reported as producer-limited with the rate
it did offer and the jobs it never sent, also without latency figures:
they would measure the producer's lag, not the backend.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from core.protocol import DriverReport, PhaseReport
from scenarios import latency_views
from scenarios.base import CellFailed, CellPlan, CellReused, Grids, Metric, RunOptions, Scenario
from scenarios.common import (
    IDLE_LIMIT_S,
    JOB_COUNT_METRICS,
    STEADY_METRICS,
    declared_only,
    idle_phase,
    job_counts,
    per_job_times,
    same_round_cell,
    split_probes,
    steady_rate,
)
from scenarios.presentation import ReportKit
from scenarios.stats import encode, histogram_of, percentiles_ms
from scenarios.throughput import (
    NOOP_PAYLOAD_BYTES,
    same_round_throughput,
    steady_workload,
    window_of,
)


@dataclass(frozen=True)
class Grid:
    rates: tuple[float, ...]  # fixed offered rates, jobs/s
    fractions: tuple[float, ...]  # of the backend's measured maximum
    seconds: float  # of open-loop sending per rate
    idle_jobs: int  # single jobs on an idle system


GRIDS = Grids(quick=Grid((200,), (0.5,), 1.5, 5),  # a smoke test of every kind of cell
              full=Grid((50, 200, 1000), (0.5, 0.8), 2.5, 20))
BACKLOG_SECONDS = 1.0  # a backlog worth more than this much offered load = saturated
KEEP_UP = 0.9  # starting less than this share of the offered rate = saturated:
# a backend that starts a share k of what it is sent keeps each job waiting 1/k - 1
# seconds longer per second of sending, so waits growing faster than this are saturation
MAX_WAIT_GROWTH = 1 / KEEP_UP - 1
PER_PRODUCER_RATE = 2000.0  # jobs/s one producer offers comfortably; more share the schedule
MAX_PRODUCERS = 3


def producers_for(rate: float) -> int:
    """Producer processes sharing one open-loop schedule of `rate` jobs/s."""
    return min(MAX_PRODUCERS, math.ceil(rate / PER_PRODUCER_RATE))


def saturation_backlog(rate: float) -> float:
    """Jobs sent but not started at the end of sending beyond which a rate is saturated."""
    return max(10.0, rate * BACKLOG_SECONDS)


def wait_growth(jobs: pd.DataFrame) -> float | None:
    """Seconds the wait in the queue (SENT -> START) grew per second of sending: the
    median wait of the last third of the started jobs (by SENT) minus that of the first
    third, over the time between their median SENTs. Medians of thirds rather than a fit,
    so a backend that polls (arq: a sawtooth of waits up to its poll delay) reads as
    steady; from SENT, so a producer that fell behind its schedule is not counted.
    None with fewer than 9 started jobs."""
    started = jobs.dropna(subset=["start", "sent"]).sort_values("sent")
    third = len(started) // 3
    if third < 3:
        return None
    first, last = started.iloc[:third], started.iloc[-third:]
    span_s = (last["sent"].median() - first["sent"].median()) / 1e9
    if span_s <= 0:
        return None
    wait = (started["start"] - started["sent"]) / 1e9
    return float((wait.loc[last.index].median() - wait.loc[first.index].median()) / span_s)


def schedule_lag(jobs: pd.DataFrame) -> dict[str, float | None]:
    """p50, p99 and max of intended -> sent, in ms: how far the producer ran behind."""
    lag = percentiles_ms(histogram_of((jobs["sent"] - jobs["intended"]).dropna()))
    return {"p50": lag["p50"], "p99": lag["p99"], "max": lag["max"]}


def latency_metrics(jobs: pd.DataFrame) -> dict[str, Any]:
    """Percentiles of queue latency, end-to-end latency and schedule lag, in ms."""
    queue = histogram_of((jobs["start"] - jobs["intended"]).dropna())
    e2e = histogram_of((jobs["end"] - jobs["intended"]).dropna())
    return {
        "latency_ms": percentiles_ms(queue), "e2e_ms": percentiles_ms(e2e),
        "schedule_lag_ms": schedule_lag(jobs),
        "hdr": {"latency": encode(queue), "e2e": encode(e2e)},
        "samples": int(jobs["start"].notna().sum()),
    }


def offered_rate(jobs: pd.DataFrame, phase: PhaseReport, duration_s: float) -> float:
    """Jobs sent per second of the schedule: over its duration, or over the time the
    producer really took when it fell behind."""
    sent = jobs["sent"].dropna()
    if sent.empty or phase.load_start_ns is None:
        return 0.0
    took = (sent.max() - phase.load_start_ns) / 1e9
    return len(sent) / max(duration_s, took)


def producer_limit_explanation(rate: float, offered: float, phase: PhaseReport) -> str:
    """One sentence: what the producer offered instead of `rate`, and why jobs were unsent."""
    text = f"offered {offered:,.0f} of {rate:,.0f} jobs/s, one enqueue call per job"
    if phase.unsent:
        text += f"; {phase.unsent:,} jobs were not sent: {phase.unsent_reason}"
    return text


class Latency(Scenario):
    name = "latency"
    title = "Latency"
    description = "open-loop latency percentiles at fixed rates and fractions of the max"
    handoff_options = ("rate_fraction",)
    reads_options = ("rates",)
    order = 20
    option_params = ("window_s",)
    grids = GRIDS
    metrics = {
        **STEADY_METRICS,  # the closed-loop max cell
        "latency_ms.*": Metric("ms", "lower", doc="{p50,p90,p99,p999,max} intended -> start"),
        "e2e_ms.*": Metric("ms", "lower", doc="{p50,p90,p99,p999,max} intended -> end"),
        "schedule_lag_ms.*": Metric("ms", "lower", doc="{p50,p99,max} intended -> sent"),
        "hdr.*": Metric(doc="{latency, e2e}: base64 HdrHistograms"),
        "samples": Metric("jobs", doc="jobs with a latency"),
        "achieved_per_s": Metric("jobs/s", "higher", doc="jobs ended per second, first "
                                 "INTENDED to last END (shown; not the saturation test)"),
        "saturated": Metric(doc="bool: the rate could not be sustained (no latency then)"),
        "wait_growth": Metric("s/s", doc="how much longer jobs waited in the queue (sent -> "
                              "start) per second of sending, from the first third of the "
                              "jobs to the last; above 1/0.9 - 1 the rate is saturated"),
        "backlog": Metric("jobs", "lower", doc="jobs sent but not started when sending ended"),
        "offered_per_s": Metric("jobs/s", doc="jobs sent per second of the schedule (below "
                                "the rate when the producer fell behind)"),
        "producer_limited": Metric(doc="bool: the producer offered less than 90% of the rate "
                                   "(no latency then)"),
        "unsent": Metric("jobs", doc="jobs of the schedule never sent: the producer was "
                         "still behind it at its cut-off (twice the sending time)"),
        "explanation": Metric(doc="one sentence naming the mechanism"),
        **JOB_COUNT_METRICS,
    }

    def plan(self, backend: str, options: RunOptions) -> list[CellPlan]:
        grid = self.grids.pick(options)
        max_workload, max_limit = steady_workload(0, options)  # = throughput's noop cell
        cells = [
            self._cell(backend, options, {"rate": None, "rate_label": "max",
                                          "window_s": window_of(options)}, max_workload,
                       max_limit),
            self._cell(backend, options, {"rate": None, "rate_label": "idle"},
                       noop_jobs([idle_phase(grid.idle_jobs)]), IDLE_LIMIT_S),
        ]
        for rate in options.rates or grid.rates:
            cells.append(self._open_cell(backend, options, float(rate), f"{rate:g}/s",
                                         grid.seconds))
        for fraction in grid.fractions:
            cells.append(self._open_cell(backend, options, None, f"{fraction:.0%}max",
                                         grid.seconds, fraction=fraction))
        return cells

    def _open_cell(self, backend: str, options: RunOptions, rate: float | None, label: str,
                   seconds: float, fraction: float | None = None) -> CellPlan:
        phase = {"type": "open", "rate": rate, "duration_s": seconds, "time_limit_s": 6.0}
        if rate is not None:
            phase.update(producers=producers_for(rate), saturated_backlog=saturation_backlog(rate))
        cell = self._cell(backend, options, {"rate": rate, "rate_label": label,
                                             "duration_s": seconds},
                          noop_jobs([phase]), seconds + 6)
        if fraction is not None:
            cell.options = {"rate_fraction": fraction}
        return cell

    def _cell(self, backend: str, options: RunOptions, params: dict[str, Any],
              workload: dict[str, Any], limit: float) -> CellPlan:
        return CellPlan(scenario=self.name, backend=backend, params=params, workload=workload,
                        timeout_s=limit + 90, profile=options.profile)

    def resolve(self, plan: CellPlan, finished: list[dict[str, Any]], round_no: int
                ) -> CellPlan:
        """Turn a fraction-of-max cell into a concrete rate from this round's max cell.

        The max cell is the throughput scenario's noop cell; when that ran
        in this round for this backend and profile, its result is reused.
        """
        if plan.params.get("rate_label") == "max":
            source = same_round_throughput(finished, plan, round_no, duration_ms=0,
                                           window_s=plan.params["window_s"])
            if source is not None:  # its window figures, not the idle probes' latency
                raise CellReused(dict(source, metrics=declared_only(
                    source["metrics"], {**STEADY_METRICS, **JOB_COUNT_METRICS})))
            return plan
        fraction = plan.options.get("rate_fraction")
        if fraction is None:
            return plan
        top = same_round_cell(finished, plan, round_no, self.name, rate_label="max")
        if top is None:
            raise CellFailed("no measured maximum rate for this backend and profile in this "
                             "round")
        rate = round(fraction * top["metrics"]["jobs_per_s"], 1)
        phases = [{**plan.workload["phases"][0], "rate": rate,
                   "producers": producers_for(rate),
                   "saturated_backlog": saturation_backlog(rate)}]
        return dataclasses.replace(plan, params={**plan.params, "rate": rate},
                                   workload={**plan.workload, "phases": phases})

    def analyze(self, plan: CellPlan, records: pd.DataFrame, report: DriverReport
                ) -> dict[str, Any]:
        label = plan.params["rate_label"]
        if label == "max":
            window_records, _ = split_probes(records, report)
            return {**steady_rate(window_records, report.phases[0], plan.params["window_s"]),
                    **job_counts(window_records)}
        jobs = per_job_times(records)
        if jobs.empty or jobs["start"].notna().sum() == 0:
            raise CellFailed("no job started")
        if label == "idle":
            return {**latency_metrics(jobs), **job_counts(records), "saturated": False}
        phase = report.phases[0]
        rate = float(plan.params["rate"])
        load_end = phase.load_end_ns
        backlog = int(((jobs["sent"] <= load_end) & ~(jobs["start"] <= load_end)).sum())
        ended = jobs["end"].dropna()
        span = (ended.max() - jobs["intended"].min()) / 1e9 if len(ended) else 0
        achieved = len(ended) / span if span > 0 else 0.0
        offered = offered_rate(jobs, phase, float(plan.params["duration_s"]))
        limited = bool(offered < KEEP_UP * rate)
        basis = offered if limited else rate  # what the backend was really given
        growth = wait_growth(jobs)
        saturated = bool(phase.timed_out or backlog > saturation_backlog(basis)
                         or (growth is not None and growth > MAX_WAIT_GROWTH))
        out: dict[str, Any] = {"achieved_per_s": achieved, "saturated": saturated,
                               "wait_growth": growth, "backlog": backlog, "offered_per_s": offered,
                               "producer_limited": limited, "unsent": phase.unsent or 0,
                               **job_counts(records)}
        if limited:
            out["explanation"] = producer_limit_explanation(rate, offered, phase)
        if saturated or limited:
            out.update({"latency_ms": None, "e2e_ms": None, "schedule_lag_ms": schedule_lag(jobs)})
            return out
        return {**out, **latency_metrics(jobs)}

    def headline(self, metrics: dict[str, Any]) -> str:
        states = []
        if metrics.get("producer_limited"):
            unsent = metrics.get("unsent") or 0
            states.append(f"producer-limited (offered {metrics['offered_per_s']:,.0f} jobs/s"
                          + (f", {unsent:,} unsent" if unsent else "") + ")")
        if metrics.get("saturated"):
            growth = metrics.get("wait_growth")
            states.append(f"saturated (backlog {metrics.get('backlog')}"
                          + (f", wait {growth:+.2f} s per s" if growth is not None else "")
                          + ")")
        if states:
            return ", ".join(states)
        latency = metrics.get("latency_ms") or {}
        if latency.get("p50") is not None:
            return f"p50 {latency['p50']:.2f} ms, p99 {latency['p99']:.2f} ms"
        return super().headline(metrics)  # the closed-loop max cell: jobs/s

    def tables(self, kit: ReportKit) -> list[Any]:
        return [latency_views.table(kit)]

    def charts(self, kit: ReportKit) -> list[Any]:
        return [latency_views.percentiles_chart(kit), latency_views.rate_chart(kit)]


LATENCY = Latency()


def noop_jobs(phases: list[dict[str, Any]]) -> dict[str, Any]:
    """Noop jobs with the payload of the `max` cell (the throughput noop cell)."""
    return {"spec": {"kind": "noop", "ms": 0}, "payload_bytes": NOOP_PAYLOAD_BYTES,
            "phases": phases}
