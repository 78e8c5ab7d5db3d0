"""The report's charts as PNG bytes, one function per chart.

Figures are built with matplotlib's object API (no pyplot state, Agg
rendering). Every chart returns None when its scenario has no data. A
failed, skipped or saturated point is never drawn as a value: it is an
"x" on the axis edge in the backend's colour (bars: a hatched gap), and
its reason goes into the chart's notes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullLocator

from reports.data import RunData, param, value
from reports.style import colour, fmt_bytes, fmt_num
from reports.verdict import numeric_params
from scenarios.stats import merge_encoded, percentiles_ms

PERCENTILES = (("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p999", "p99.9"))
DPI = 100


@dataclass
class Chart:
    slug: str
    scenario: str
    title: str
    png: bytes
    caption: str = ""
    notes: list[str] = field(default_factory=list)


def to_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return buffer.getvalue()


def new_figure(width: float, height: float) -> Figure:
    """A figure outside pyplot; constrained layout keeps outside legends in the picture."""
    return Figure(figsize=(width, height), layout="constrained")


def gap_notes(frame: pd.DataFrame, where: Callable[[pd.Series], str]) -> list[str]:
    """One line per series for its failed/skipped/saturated points, with the reason."""
    notes = []
    for series, rows in frame.groupby("series", sort=False):
        bad = rows[(rows["status"] != "ok") | rows["saturated"]]
        by_reason: dict[str, list[str]] = {}
        for _, row in bad.iterrows():
            state = "saturated" if row["status"] == "ok" else f"{row['status']}: {row['reason']}"
            by_reason.setdefault(state, []).append(where(row))
        for state, points in by_reason.items():
            scope = "all points" if len(points) == len(rows) else ", ".join(points)
            scope = f" ({scope})" if any(points) else ""
            notes.append(f"{series}{scope} \u2014 {state}; not plotted")
        partial = rows[(rows["status"] == "ok") & (rows["rounds_ok"] < rows["rounds"])]
        if len(partial):
            points = ", ".join(where(r) for _, r in partial.iterrows())
            notes.append(f"{series} ({points}) \u2014 plotted from the ok rounds only; the "
                         f"others failed (reasons under Environment: Skipped and failed)")
    return notes


def edge_marks(ax: Axes, xs: Iterable[float], backend: str, top: bool = False) -> bool:
    """An 'x' at the bottom (or top) edge of the axes for points without a value."""
    xs = list(xs)
    if xs:
        ax.plot(xs, [0.96 if top else 0.03] * len(xs), linestyle="none", marker="x",
                markersize=9, markeredgewidth=2, color=colour(backend),
                transform=ax.get_xaxis_transform(), clip_on=False, zorder=5)
    return bool(xs)


def gap_handles(bottom: bool, top: bool = False) -> list[Line2D]:
    """Legend entries explaining the edge marks that were drawn."""
    handles = []
    if bottom:
        handles.append(Line2D([], [], linestyle="none", marker="x", color="0.4",
                              markeredgewidth=2, label="x at bottom: failed/skipped"))
    if top:
        handles.append(Line2D([], [], linestyle="none", marker="x", color="0.4",
                              markeredgewidth=2, label="x at top: saturated"))
    return handles


def legend_outside(ax: Axes, extra: list[Line2D] | None = None) -> None:
    handles, labels = ax.get_legend_handles_labels()
    for handle in extra or []:
        handles.append(handle)
        labels.append(handle.get_label())
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  fontsize=9, frameon=False)


def errors(rows: pd.DataFrame, metric: str) -> np.ndarray:
    """Asymmetric error bars from the [min, max] across rounds."""
    med = rows[metric].astype(float).to_numpy()
    low = rows.get(f"{metric}:min", rows[metric]).astype(float).fillna(rows[metric]).to_numpy()
    high = rows.get(f"{metric}:max", rows[metric]).astype(float).fillna(rows[metric]).to_numpy()
    return np.vstack([np.clip(med - low, 0, None), np.clip(high - med, 0, None)])


def bytes_axis(ax: Axes, sizes: list[float]) -> None:
    ax.set_xscale("log")
    crowded = len(sizes) > 4
    ax.set_xticks(sizes, [fmt_bytes(s) for s in sizes], rotation=30 if crowded else 0,
                  ha="right" if crowded else "center")
    ax.xaxis.set_minor_locator(NullLocator())


def plain_log_y(ax: Axes) -> None:
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: fmt_num(v, 2)))


def ok_rows(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    if metric not in rows:
        return rows.iloc[0:0]
    return rows[(rows["status"] == "ok") & rows[metric].notna()]


def state_of(rows: pd.DataFrame) -> str:
    """Why a series has no value at all: 'skipped', 'failed', 'saturated'..."""
    states = [s for s in dict.fromkeys(rows["status"]) if s != "ok"]
    if rows["saturated"].any():
        states.append("saturated")
    return "/".join(states) or "no data"


def present(frame: pd.DataFrame, metric: str, absent: list[Line2D]
            ) -> list[tuple[str, str, pd.DataFrame, pd.DataFrame]]:
    """(series, backend, rows, ok rows) of series with a value; the rest go to `absent`."""
    out = []
    for series, rows in frame.groupby("series", sort=False):
        backend = str(rows["backend"].iloc[0])
        ok = ok_rows(rows, metric)
        if ok.empty:
            note_absent(absent, str(series), backend, state_of(rows))
        else:
            out.append((str(series), backend, rows, ok))
    return out


def note_absent(absent: list[Line2D], series: str, backend: str, state: str) -> None:
    """A legend entry for a series drawn nowhere in the chart, with why."""
    label = f"{series}: {state}, not shown"
    if label not in [h.get_label() for h in absent]:
        absent.append(Line2D([], [], linestyle="none", marker="x", color=colour(backend),
                             markeredgewidth=2, label=label))


# -- throughput --------------------------------------------------------------------------
def throughput_chart(data: RunData) -> Chart | None:
    frame = data.scenario("throughput")
    if not data.has_data("throughput"):
        return None
    durations = numeric_params(frame, "duration_ms")
    positive = [d for d in durations if d > 0]
    zero_x = (positive[0] if positive else 1.0) / 10

    def xpos(d: float) -> float:
        return d if d > 0 else zero_x

    fig = new_figure(9, 5)
    ax = fig.add_subplot()
    absent: list[Line2D] = []
    marked = False
    for series, backend, rows, ok in present(frame, "jobs_per_s", absent):
        ok = ok.sort_values("params.duration_ms")
        pos = ok[ok["params.duration_ms"] > 0]
        ax.errorbar(pos["params.duration_ms"], pos["jobs_per_s"],
                    yerr=errors(pos, "jobs_per_s"), color=colour(backend), marker="o",
                    capsize=3, label=series)
        zero = ok[ok["params.duration_ms"] == 0]
        ax.errorbar([zero_x] * len(zero), zero["jobs_per_s"], yerr=errors(zero, "jobs_per_s"),
                    color=colour(backend), marker="s", capsize=3, linestyle="none")
        bad = rows[~rows.index.isin(ok.index)]
        marked |= edge_marks(ax, [xpos(d) for d in bad["params.duration_ms"]], backend)
    notes = gap_notes(frame, lambda r: f"{fmt_num(param(r, 'duration_ms'))} ms")
    slots = param(frame.iloc[0], "slots") if "params.slots" in frame else None
    if positive and slots:
        xs = np.geomspace(positive[0], positive[-1], 50)
        ax.plot(xs, slots * 1000 / xs, color="black", linestyle="--", linewidth=1,
                label=f"ideal: {slots} slots / duration")
    ax.set_xscale("log")
    plain_log_y(ax)
    ticks = ([zero_x] if 0 in durations else []) + positive
    ax.set_xticks(ticks, (["0 ms\n(no-op)"] if 0 in durations else [])
                  + [f"{fmt_num(d)} ms" for d in positive])
    ax.xaxis.set_minor_locator(NullLocator())
    if 0 in durations and positive:
        ax.axvline(math.sqrt(zero_x * positive[0]), color="0.75", linestyle=":", linewidth=1)
    ax.set_xlim(zero_x / 2, (positive[-1] if positive else 1) * 2)
    ax.set_xlabel("job duration (sleep, log scale; no-op plotted apart on the left)")
    ax.set_ylabel("completed jobs per second (log scale)")
    ax.set_title(f"Throughput vs job duration ({slots} slots per backend)")
    ax.grid(True, which="major", alpha=0.3)
    legend_outside(ax, gap_handles(marked) + absent)
    return Chart("throughput_vs_duration", "throughput", "Throughput vs job duration",
                 to_png(fig), "Error bars: min..max across rounds. The dashed line is the "
                 "most any backend can do: slots / duration.", notes)


# -- latency -----------------------------------------------------------------------------
def rate_order(label: str) -> tuple[int, float]:
    """idle first, then fixed rates by value, then fractions of the max."""
    if label == "idle":
        return (0, 0.0)
    if label.endswith("/s"):
        try:
            return (1, float(label[:-2]))
        except ValueError:
            return (1, 0.0)
    if label.endswith("%max"):
        try:
            return (2, float(label[:-4]))
        except ValueError:
            return (2, 0.0)
    return (3, 0.0)


def percentiles_of(cells: pd.DataFrame, groups: pd.DataFrame) -> tuple[list[float], str] | None:
    """p50..p99.9 in ms: merged HdrHistograms of ok rounds, else medians of aggregates."""
    ok = cells[cells["status"] == "ok"]
    encoded = [c.get("hdr", {}).get("latency") for c in ok["raw"]]
    if len(ok) and all(isinstance(e, str) for e in encoded):
        pct = percentiles_ms(merge_encoded([e for e in encoded if e]))
        if all(pct[key] is not None for key, _ in PERCENTILES):
            return [float(pct[key]) for key, _ in PERCENTILES], "hdr"  # type: ignore[arg-type]
    rows = groups[groups["status"] == "ok"]
    cols = [f"latency_ms.{key}" for key, _ in PERCENTILES]
    if rows.empty or not all(c in rows for c in cols) or rows[cols].isna().any(axis=None):
        return None
    return [float(rows[c].median()) for c in cols], "median"


def latency_percentiles_chart(data: RunData) -> Chart | None:
    frame = data.scenario("latency")
    if not data.has_data("latency") or "params.rate_label" not in frame:
        return None
    cells = data.scenario_cells("latency")
    labels = sorted({str(x) for x in frame["params.rate_label"].dropna()} - {"max"},
                    key=rate_order)
    if not labels:
        return None
    cols = min(3, len(labels))
    nrows = math.ceil(len(labels) / cols)
    fig = new_figure(3.4 * cols + 1.8, 3.0 * nrows + 0.4)
    axes = fig.subplots(nrows, cols, sharey=True, squeeze=False).ravel()
    sources: set[str] = set()
    shown: set[str] = set()
    missing: dict[str, tuple[str, str]] = {}
    drawn = False
    gaps: dict[str, list[tuple[str, str]]] = {}
    for ax, label in zip(axes, labels, strict=False):
        here = frame[frame["params.rate_label"] == label]
        for series, rows in here.groupby("series", sort=False):
            backend = rows["backend"].iloc[0]
            found = percentiles_of(cells[cells["key"].isin(rows["key"])], rows)
            if found is None:
                missing.setdefault(str(series), (str(backend), state_of(rows)))
                gaps.setdefault(label, []).append((str(series), state_of(rows)))
                continue
            shown.add(str(series))
            ys, source = found
            sources.add(source)
            drawn = True
            ax.plot(range(len(PERCENTILES)), ys, marker="o", color=colour(backend),
                    label=series)
        ax.set_xticks(range(len(PERCENTILES)), [name for _, name in PERCENTILES])
        ax.set_xlim(-0.4, len(PERCENTILES) - 0.6)
        ax.grid(True, which="major", alpha=0.3)
        ax.set_xlabel("percentile")
    for ax in axes[len(labels):]:
        ax.set_visible(False)
    if not drawn:
        return None
    for ax, label in zip(axes, labels, strict=False):  # name what a panel lacks, in place
        lacking = [f"{name} {state}" for name, state in gaps.get(label, []) if name in shown]
        ax.set_title(f"offered: {label}" + ("\nno value: " + ", ".join(lacking)
                                            if lacking else ""), fontsize=10)
    plain_log_y(axes[0])
    for row_start in range(0, len(axes), cols):
        axes[row_start].set_ylabel("queue latency, ms (log)")
    handles: dict[str, Line2D] = {}
    for ax in axes:
        for handle, name in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(name, handle)
    absent: list[Line2D] = []
    for series, (backend, state) in missing.items():
        if series not in shown:
            note_absent(absent, series, backend, state)
    fig.legend([*handles.values(), *absent], [*handles, *(h.get_label() for h in absent)],
               loc="outside right upper", fontsize=9, frameon=False)
    fig.suptitle("Queue latency percentiles (intended send \u2192 start) per offered rate")
    how = {"hdr": "merged HdrHistograms of all ok rounds",
           "median": "medians of per-round percentiles (no histograms in results)"}
    notes = gap_notes(frame[frame["params.rate_label"] != "max"],
                      lambda r: str(param(r, "rate_label")))
    return Chart("latency_percentiles", "latency", "Latency percentiles per backend",
                 to_png(fig), "Computed from " + " and ".join(how[s] for s in sorted(sources))
                 + ". Evenly spaced percentile categories; log y.", notes)


def latency_rate_chart(data: RunData) -> Chart | None:
    frame = data.scenario("latency")
    if not data.has_data("latency") or "params.rate" not in frame:
        return None
    rated = frame[frame["params.rate"].notna() & (frame["params.rate_label"] != "max")]
    if rated.empty or "latency_ms.p99" not in rated:
        return None
    fig = new_figure(11, 4.6)
    axes = fig.subplots(1, 2, sharey=True)
    any_saturated = marked = False
    absent: list[Line2D] = []
    for ax, key, name in ((axes[0], "latency_ms.p50", "p50"), (axes[1], "latency_ms.p99", "p99")):
        for series, backend, rows, ok in present(rated, key, absent):
            rows = rows.assign(_rate=rows["params.rate"].astype(float)).sort_values("_rate")
            ok = ok_rows(rows, key)
            ax.plot(ok["_rate"], ok[key], marker="o", color=colour(backend), label=series)
            saturated = rows[(rows["status"] == "ok") & rows["saturated"]]
            any_saturated |= edge_marks(ax, saturated["_rate"], backend, top=True)
            marked |= edge_marks(ax, rows[rows["status"] != "ok"]["_rate"], backend)
            top = frame[(frame["series"] == series) & (frame["params.rate_label"] == "max")]
            if not top.empty and value(top.iloc[0], "jobs_per_s"):
                ax.axvline(value(top.iloc[0], "jobs_per_s"), color=colour(backend),
                           linestyle=":", linewidth=1, alpha=0.7)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: fmt_num(v, 2)))
        ax.set_xlabel("offered rate, jobs/s (log)")
        ax.set_title(f"{name} queue latency")
        ax.grid(True, which="major", alpha=0.3)
    plain_log_y(axes[0])
    axes[0].set_ylabel("queue latency, ms (log)")
    extra = gap_handles(marked, any_saturated) + [
        Line2D([], [], color="0.4", linestyle=":", label="dotted: measured max rate")] + absent
    legend_outside(axes[1], extra)
    fig.suptitle("Queue latency vs offered rate (open loop)")
    notes = gap_notes(rated, lambda r: str(param(r, "rate_label")))
    return Chart("latency_vs_rate", "latency", "Latency vs offered rate", to_png(fig),
                 "Each point is one offered rate (fixed, or a fraction of the backend's own "
                 "measured maximum). Saturated: the backlog kept growing, so no latency is "
                 "reported.", notes)


# -- payload and memory ------------------------------------------------------------------
def payload_chart(data: RunData) -> Chart | None:
    frame = data.scenario("payload")
    if not data.has_data("payload"):
        return None
    sizes = numeric_params(frame, "payload_bytes")
    fig = new_figure(11, 4.6)
    axes = fig.subplots(1, 2)
    panels = ((axes[0], "jobs_per_s", "completed jobs per second (log)", "Throughput"),
              (axes[1], "latency_ms.p99", "p99 queue latency, ms (log)", "p99 latency, idle"))
    absent: list[Line2D] = []
    marked = False
    for ax, metric, ylabel, title in panels:
        for series, backend, rows, ok in present(frame, metric, absent):
            ok = ok.sort_values("params.payload_bytes")
            ax.errorbar(ok["params.payload_bytes"], ok[metric], yerr=errors(ok, metric),
                        marker="o", capsize=3, color=colour(backend), label=series)
            marked |= edge_marks(ax, rows[~rows.index.isin(ok.index)]["params.payload_bytes"],
                                 backend)
        bytes_axis(ax, sizes)
        plain_log_y(ax)
        ax.set_xlabel("payload per job (log)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, which="major", alpha=0.3)
    legend_outside(axes[1], gap_handles(marked) + absent)
    fig.suptitle("Payload size: throughput and latency")
    notes = gap_notes(frame, lambda r: fmt_bytes(param(r, "payload_bytes")))
    return Chart("payload", "payload", "Throughput and p99 latency vs payload size",
                 to_png(fig), "Left: batch drain rate. Right: single jobs sent one at a time "
                 "on an idle system. Error bars: min..max across rounds.", notes)


def memory_chart(data: RunData) -> Chart | None:
    frame = data.scenario("memory")
    if not data.has_data("memory"):
        return None
    sizes = numeric_params(frame, "payload_bytes")
    fig = new_figure(9, 5)
    ax = fig.add_subplot()
    absent: list[Line2D] = []
    marked = False
    for series, backend, rows, ok in present(frame, "bytes_per_job", absent):
        ok = ok.sort_values("params.payload_bytes")
        ax.errorbar(ok["params.payload_bytes"], ok["bytes_per_job"],
                    yerr=errors(ok, "bytes_per_job"), marker="o", capsize=3,
                    color=colour(backend), label=series)
        marked |= edge_marks(ax, rows[~rows.index.isin(ok.index)]["params.payload_bytes"],
                             backend)
    if sizes:
        xs = np.geomspace(sizes[0], sizes[-1], 20)
        ax.plot(xs, xs, color="black", linestyle="--", linewidth=1,
                label="payload size itself (reference)")
    bytes_axis(ax, sizes)
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=4))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: fmt_bytes(v)))
    ax.set_xlabel("payload per job (log)")
    ax.set_ylabel("broker memory per queued job (log)")
    ax.set_title("Memory per queued job vs payload size")
    ax.grid(True, which="major", alpha=0.3)
    legend_outside(ax, gap_handles(marked) + absent)
    notes = gap_notes(frame, lambda r: fmt_bytes(param(r, "payload_bytes")))
    return Chart("memory", "memory", "Memory per queued job vs payload size", to_png(fig),
                 "Distance above the dashed line is the per-job overhead of the broker and "
                 "the library's message format.", notes)


# -- crash recovery ----------------------------------------------------------------------
def crash_chart(data: RunData, fault: str, slug: str, title: str,
                label: Callable[[pd.Series], str]) -> Chart | None:
    """Horizontal bars, one row per backend and setting; lost / duplicated / completed."""
    frame = data.scenario("crash-recovery")
    if "params.fault" not in frame:
        return None
    frame = frame[frame["params.fault"] == fault]
    if frame.empty or not (frame["status"] == "ok").any():
        return None
    absent: list[Line2D] = []
    shown = []
    notes = []
    for backend, rows in frame.groupby("backend", sort=False):
        if (rows["status"] == "ok").any():
            shown.append(rows)
        else:
            note_absent(absent, str(backend), str(backend), state_of(rows))
            first = rows.iloc[0]
            notes.append(f"{backend} (every setting) \u2014 {first['status']}: "
                         f"{first['reason'] or 'no reason given'}; not plotted")
    frame = pd.concat(shown)
    names = [label(row) for _, row in frame.iterrows()]
    fig = new_figure(12, 1.6 + 0.32 * len(names))
    axes = fig.subplots(1, 3, sharey=True)
    ys = list(range(len(names)))[::-1]
    for ax, metric, xlabel in ((axes[0], "lost", "jobs lost"),
                               (axes[1], "duplicated", "jobs run more than once"),
                               (axes[2], "completed", "jobs completed")):
        for y, (_, row) in zip(ys, frame.iterrows(), strict=True):
            got = value(row, metric) if row["status"] == "ok" else None
            if got is None:
                ax.axhspan(y - 0.4, y + 0.4, facecolor="none", edgecolor="0.7", hatch="xx",
                           linewidth=0)
                ax.text(0.02, y, f"{row['status']}" if row["status"] != "ok" else "n/a",
                        va="center", ha="left", color="0.25", fontsize=8,
                        transform=ax.get_yaxis_transform())
                continue
            ax.barh(y, got, height=0.7, color=colour(row["backend"]),
                    hatch="//" if _is_reliable(row) else "", edgecolor="white")
            jobs = param(row, "jobs")
            text = fmt_num(got) + (f" of {fmt_num(jobs)}" if metric == "completed" and jobs
                                   else "")
            ax.annotate(text, (got, y), xytext=(3, 0), textcoords="offset points",
                        va="center", ha="left", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
        ax.set_xlabel(xlabel)
        ax.set_xlim(left=0)
        ax.set_xlim(0, max(1.0, ax.get_xlim()[1]) * (1.45 if metric == "completed" else 1.2))
        ax.grid(True, axis="x", alpha=0.3)
    axes[0].set_yticks(ys, names, fontsize=9)
    axes[0].set_ylim(-0.6, len(names) - 0.4)
    if absent:
        fig.legend(absent, [h.get_label() for h in absent], loc="outside lower center",
                   fontsize=9, frameon=False, ncol=2)
    fig.suptitle(title)
    notes = gap_notes(frame.assign(series=names), lambda r: "") + notes
    return Chart(slug, "crash-recovery", title, to_png(fig),
                 "Bars: median over rounds. Hatched bars: the reliable profile, or a "
                 "persistent broker setting. A cross-hatched row: failed or skipped, no value.",
                 notes)


def _is_reliable(row: pd.Series) -> bool:
    persistence = param(row, "persistence")
    if persistence is not None:
        return str(persistence) not in ("off", "transient")
    return str(param(row, "mode") or row["profile"]) != "default"


def worker_kill_chart(data: RunData) -> Chart | None:
    return crash_chart(data, "worker-kill", "crash_worker_kill",
                       "Worker killed (SIGKILL) mid-job: lost / duplicated / completed",
                       lambda r: f"{r['backend']} \u00b7 {param(r, 'mode') or r['profile']}")


def broker_kill_chart(data: RunData) -> Chart | None:
    return crash_chart(data, "broker-kill", "crash_broker_kill",
                       "Broker killed (kill -9) with queued jobs, by persistence setting",
                       lambda r: f"{r['backend']} \u00b7 persistence {param(r, 'persistence')}"
                       + (f" \u00b7 {param(r, 'mode')}" if param(r, "mode") not in (None, "default")
                          else ""))


CHARTS: tuple[Callable[[RunData], Chart | None], ...] = (
    throughput_chart, latency_percentiles_chart, latency_rate_chart, payload_chart,
    memory_chart, worker_kill_chart, broker_kill_chart,
)


def charts(data: RunData) -> list[Chart]:
    return [chart for make in CHARTS if (chart := make(data)) is not None]
