"""Record arithmetic shared by scenarios: enqueue rate, drain rate, counts, idle probes."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from core.protocol import DriverReport, PhaseReport, SustainedPhase
from core.recorder import Event
from scenarios.base import CellFailed, CellPlan, Grids, Metric, RunOptions
from scenarios.stats import histogram_of, percentiles_ms

_SUSTAINED = SustainedPhase()  # its defaults, which the metrics' docs quote
MAX_STABLE_CV = 0.10  # above this, the per-second completions are too uneven to rank
# The figures a steady-state window gives (and those derived from its rate): what a cell's
# `unstable` flag is about; its other figures (idle probes, a depth's enqueue rate and
# memory) come from elsewhere and are not marked by it.
WINDOW_FIGURES = frozenset({"jobs_per_s", "window_jobs", "stability_cv", "cpu_us_per_job",
                            "jobs_per_loop", "cpu_loops_per_job", "efficiency",
                            "probe_expected_s"})
# The steady-state tables' note on their markers (reports/verdict.py sets them).
STEADY_TABLE_NOTE = ("Each figure is a steady-state window; \"(unstable)\" marks one whose "
                     "window fell short or whose per-second completions varied by more than "
                     "10% (CV in the tooltip); \"(producer-bound)\" one whose queue ran dry "
                     "inside the window, so the producer may have set the pace: a lower bound, "
                     "not ranked.")

# The metrics the helpers below emit, declared once for every scenario that uses them.
JOBS_PER_S = Metric("jobs/s", "higher", gated=True,
                    doc="completed jobs per second after the warm-up")
ENQUEUE_PER_S = Metric("jobs/s", "higher", doc="jobs sent per second")
DRAIN_METRICS = {
    "jobs_per_s": JOBS_PER_S,
    "window_s": Metric("s", doc="the counted window"),
    "window_jobs": Metric("jobs", doc="jobs ended in the counted window"),
}
STEADY_METRICS = {
    **DRAIN_METRICS,
    "per_second": Metric("jobs", doc="list: completions in each 1 s of the window"),
    "stability_cv": Metric("", "lower", doc="coefficient of variation of per_second"),
    "unstable": Metric(doc="bool: window shorter than asked, or stability_cv above 10%"),
    "producer_bound": Metric(doc="bool: the backlog ran dry inside the window, so the "
                                 "producer, not the backend, may have set the rate"),
    "ramp_s": Metric("s", doc=f"from the gate's opening to the window: until the workers "
                              f"ended jobs at {_SUSTAINED.ramp_share}x calibrated_per_s over "
                              f"{_SUSTAINED.ramp_span_s} s, at least {_SUSTAINED.settle_s} s "
                              f"and at most {_SUSTAINED.max_ramp_s} s"),
    "ramp_reached": Metric(doc="bool: the workers were at that rate when the window opened "
                               "(false: it opened at the limit)"),
    "calibrated_per_s": Metric("jobs/s", doc="the rate that sized the preload: the warm-up's "
                                             "second half, or a probe drain"),
    "calibrated_by": Metric(doc="'warm-up' (the driver kept the queue fed all through it) or "
                                "'probe' (a drain with the driver idle)"),
    "window_sent": Metric("jobs", doc="jobs the driver had to send inside the window "
                                      "(0 when the preload lasted)"),
    "producer_busy_s": Metric("s", doc="time the driver spent enqueueing after the workers "
                                       "started, window included"),
    "window_producer_busy_s": Metric("s", doc="of which inside the window"),
    "cpu_us_per_job": Metric("us", "lower", gated=True,
                             doc="CPU time (user + system) the worker processes used in "
                                 "the window, per job ended in it: the backend's own cost "
                                 "per job, without the broker's and the producer's; "
                                 "compare a backend only with itself"),
    # added by the runner's speed meter (harness/speed), when it ran
    "probe_us": Metric("us", doc="CPU time of the speed probe's fixed loop over the window, "
                                 "mean of all CPUs (lower: the machine ran faster)"),
    "jobs_per_loop": Metric("jobs/loop", "higher", doc="jobs_per_s x probe_us: jobs completed in "
                                                  "the time one probe loop took, for jobs that "
                                                  "do not sleep; compare a backend only with "
                                                  "itself"),
    "cpu_loops_per_job": Metric("loops", "lower", doc="cpu_us_per_job / probe_us: the CPU "
                                                      "a job took, in probe loops"),
}
PROBE_METRICS = {
    "latency_ms.*": Metric("ms", "lower", doc="{p50,p99} of the idle probes, intended -> start"),
    "latency_samples": Metric("jobs", doc="idle probes with a latency"),
}
IDLE_PROBES: Grids[int] = Grids(quick=5, full=10)  # single jobs after a window, one at a time
JOB_COUNT_METRICS = {
    "completed": Metric("jobs", doc="distinct jobs that ended"),
    "errors": Metric("jobs", "lower", doc="distinct jobs that failed"),
    "duplicated": Metric("jobs", "lower", doc="jobs started more than once"),
}


def events(records: pd.DataFrame, event: Event) -> pd.DataFrame:
    return records[records["event"] == int(event)]


def same_round_cell(finished: list[dict[str, Any]], plan: CellPlan, round_no: int,
                    scenario: str, **params: Any) -> dict[str, Any] | None:
    """The ok `scenario` cell of `plan`'s backend and profile in this round whose params
    include `params`, if one has ended: what a later cell reuses or derives from."""
    return next((cell for cell in finished
                 if cell["scenario"] == scenario and cell["backend"] == plan.backend
                 and cell["round"] == round_no and cell["profile"] == plan.profile
                 and cell["status"] == "ok"
                 and all(cell["params"].get(k) == v for k, v in params.items())), None)


def steady_rate(records: pd.DataFrame, phase: PhaseReport, wanted_s: float) -> dict[str, Any]:
    """Completions per second over a sustained phase's window, with their stability.

    A slow backend gets its figure with the job count behind it; only a window
    in which nothing ended is no figure at all.
    """
    if phase.window_start_ns is None or phase.window_end_ns is None:
        raise CellFailed("the sustained phase recorded no window")
    start, end = phase.window_start_ns, phase.window_end_ns
    ends = events(records, Event.END)["t_ns"].to_numpy()
    counted = ends[(ends >= start) & (ends < end)]
    window_s = (end - start) / 1e9
    whole = int(window_s)
    per_second = np.histogram(counted, bins=start + np.arange(whole + 1) * 1_000_000_000)[0]
    mean = float(per_second.mean()) if whole else 0.0
    cv = float(per_second.std() / mean) if mean > 0 else None
    if len(counted) == 0:
        raise CellFailed(f"no job ended in the {window_s:.1f} s window")
    return {
        "jobs_per_s": len(counted) / window_s, "window_s": round(window_s, 3),
        "window_jobs": int(len(counted)), "per_second": per_second.tolist(),
        "stability_cv": cv,
        "unstable": bool(window_s < wanted_s - 1e-3 or cv is None or cv > MAX_STABLE_CV),
        "producer_bound": (phase.window_min_backlog or 0) <= 0,
        "ramp_s": phase.ramp_s,
        "ramp_reached": phase.ramp_reached,
        "calibrated_per_s": phase.calibrated_per_s,
        "calibrated_by": phase.calibrated_by,
        "window_sent": phase.window_sent,
        "producer_busy_s": phase.producer_busy_s,
        "window_producer_busy_s": phase.window_producer_busy_s,
        # none when the reading is not a reading (no workers' CPU seen in the window)
        "cpu_us_per_job": (round(phase.window_cpu_s * 1e6 / len(counted), 2)
                           if phase.window_cpu_s and phase.window_cpu_s > 0 else None),
    }


def preload_enqueue_per_s(phase: PhaseReport) -> float | None:
    """Enqueue rate of the batch a sustained phase preloads before the workers start."""
    if not phase.preloaded or phase.load_start_ns is None or phase.load_end_ns is None:
        return None
    span = (phase.load_end_ns - phase.load_start_ns) / 1e9
    return phase.preloaded / span if span > 0 and not math.isclose(span, 0) else None


def job_counts(records: pd.DataFrame) -> dict[str, int]:
    """Distinct jobs completed, failed, started more than once."""
    ends = events(records, Event.END)
    starts = events(records, Event.START)
    per_job_starts = starts.groupby("job_id").size()
    return {
        "completed": int(ends["job_id"].nunique()),
        "errors": int(events(records, Event.ERROR)["job_id"].nunique()),
        "duplicated": int((per_job_starts > 1).sum()),
    }


def per_job_times(records: pd.DataFrame) -> pd.DataFrame:
    """One row per job: first INTENDED, SENT, START, END time."""
    columns = {}
    for name, event in (("intended", Event.INTENDED), ("sent", Event.SENT),
                        ("start", Event.START), ("end", Event.END)):
        columns[name] = events(records, event).groupby("job_id")["t_ns"].min()
    return pd.DataFrame(columns)


IDLE_GAP_MS = 20  # between one idle probe's end and the next one's send
IDLE_LIMIT_S = 30.0


def idle_phase(jobs: int, purge_first: bool = False) -> dict[str, Any]:
    """`jobs` single jobs sent one at a time, each after the last ended: the latency of
    an idle system (`purge_first`: once a window's leftover backlog is purged)."""
    return {"type": "idle", "jobs": jobs, "gap_ms": IDLE_GAP_MS, "time_limit_s": IDLE_LIMIT_S,
            **({"purge_first": True} if purge_first else {})}


def idle_probe_phase(options: RunOptions) -> dict[str, Any]:
    """The idle probes after a window, for jobs of the cell's payload."""
    return idle_phase(IDLE_PROBES.pick(options), purge_first=True)


def split_probes(records: pd.DataFrame, report: DriverReport
                 ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(the records of the first phase, the PROBE_METRICS of an idle phase after it; none
    when the cell has no second phase)."""
    if len(report.phases) < 2:
        return records, {}
    probe_first = report.phases[1].first_id
    probes = per_job_times(records[records["job_id"] >= probe_first])
    latency = percentiles_ms(histogram_of((probes["start"] - probes["intended"]).dropna()))
    return records[records["job_id"] < probe_first], {
        "latency_ms": {"p50": latency["p50"], "p99": latency["p99"]},
        "latency_samples": int(probes["start"].notna().sum()),
    }


def declared_only(metrics: dict[str, Any], declarations: Mapping[str, Metric]
                  ) -> dict[str, Any]:
    """The entries of `metrics` that `declarations` name (`latency_ms.*` names
    `latency_ms`): what a cell reusing another cell's result may take from it."""
    keep = {name.split(".")[0] for name in declarations}
    return {name: value for name, value in metrics.items() if name in keep}
