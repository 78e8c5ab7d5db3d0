"""The latency scenario's report: its verdict table and its two charts."""

from __future__ import annotations

import math
import textwrap
from typing import Any

import pandas as pd

from core.words import counted
from scenarios.common import STEADY_TABLE_NOTE
from scenarios.presentation import ReportKit, Rows
from scenarios.stats import SAMPLES_FOR, merged_round_percentiles, saturated

PANEL_TITLE_CHARS = 40  # what fits a 3.4 in panel at 10 pt

PERCENTILES = (("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p999", "p99.9"))


def supported(ys: list[float], samples: int | None) -> list[float]:
    """The leading percentiles `samples` can tell apart from the maximum (all of them when
    the count is not known): 5 idle probes give a p50, not a p99."""
    if samples is None:
        return ys
    keys = [key for key, _ in PERCENTILES]
    return [y for y, key in zip(ys, keys, strict=True) if samples >= SAMPLES_FOR[key]]


def samples_of(cells: pd.DataFrame, source: str) -> int | None:
    """The jobs behind one series' percentiles: every ok round's together when their
    histograms were merged ("hdr"), one round's (the fewest) when each percentile is a
    median of per-round ones; None if a round lacks the count."""
    counts = [c.get("samples") for c in with_latency(cells)["raw"]]
    if not counts or not all(isinstance(n, int | float) for n in counts):
        return None
    return int(sum(counts)) if source == "hdr" else int(min(counts))


def with_latency(cells: pd.DataFrame) -> pd.DataFrame:
    """The ok rounds that have a latency: a round that saturated has none."""
    ok = cells[cells["status"] == "ok"]
    if ok.empty:
        return ok
    return ok[~ok["raw"].map(saturated)]


def point_name(kit: ReportKit, row: pd.Series) -> str:
    """A point's rate label, with the rate a fraction of the maximum came to: that rate
    differs per round, so one round's point may be plotted and another's not."""
    label, rate = str(kit.param(row, "rate_label")), kit.param(row, "rate")
    if label.endswith("%max") and rate is not None:
        return f"{label} = {kit.fmt_num(float(rate))}/s"
    return label


def mid_rate_label(frame: Rows) -> str | None:
    """The middle of the fixed offered rates ('200/s' of 50, 200, 1000)."""
    if "params.rate_label" not in frame:
        return None
    fixed = frame[frame["params.rate_label"].astype(str).str.endswith("/s")]
    rates = sorted({(float(r), str(lbl)) for r, lbl in
                    zip(fixed["params.rate"], fixed["params.rate_label"], strict=True)
                    if r is not None and not pd.isna(r)})
    if not rates:
        labels = [lbl for lbl in dict.fromkeys(frame["params.rate_label"].dropna())
                  if lbl not in ("max", "idle")]
        return labels[len(labels) // 2] if labels else None
    return rates[(len(rates) - 1) // 2][1]


def table(kit: ReportKit) -> Any:
    frame = kit.frame
    columns = []
    label = mid_rate_label(frame)
    if label:
        columns.append(kit.column(f"p99 queue latency at {label}", {"rate_label": label},
                                  "latency_ms.p99"))
    if "params.rate_label" in frame and (frame["params.rate_label"] == "max").any():
        columns.append(kit.column("max rate, closed loop", {"rate_label": "max"},
                                  "jobs_per_s"))
    return kit.table("Latency: p99 queue latency (intended send -> start)", columns,
                     "p99: lower is better; max rate: higher is better. Latency is "
                     "measured from the intended send time (open loop). Max rate: "
                     + STEADY_TABLE_NOTE,
                     explanations=producer_limited(frame))


def producer_limited(frame: Rows) -> list[tuple[str, str]]:
    """(series and rate, why) of each ok cell whose producer could not offer its rate:
    the scenario's explanation, which only such cells carry."""
    if "explanation" not in frame or "params.rate_label" not in frame:
        return []
    told = frame["explanation"].map(lambda text: isinstance(text, str) and text != "")
    rows = frame[(frame["status"] == "ok") & told]
    where = rows["series"].astype(str) + ", " + rows["params.rate_label"].astype(str)
    return list(zip(where, rows["explanation"].astype(str), strict=True))


def producer_limited_notes(frame: Rows) -> list[str]:
    """A chart note per producer-limited point: it has no latency to plot."""
    return [f"{where} \u2014 producer-limited: {why}; not plotted"
            for where, why in producer_limited(frame)]


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


def percentiles_of(cells: pd.DataFrame, groups: Rows) -> tuple[list[float], str] | None:
    """p50..p99.9 in ms: merged HdrHistograms of ok rounds, else medians of aggregates."""
    merged = merged_round_percentiles([{"metrics": metrics}
                                       for metrics in cells[cells["status"] == "ok"]["raw"]])
    hdr = [merged.get(f"latency_ms.{key}") for key, _ in PERCENTILES]
    if all(value is not None for value in hdr):
        return [float(value) for value in hdr], "hdr"  # type: ignore[arg-type]
    rows = groups[groups["status"] == "ok"]
    cols = [f"latency_ms.{key}" for key, _ in PERCENTILES]
    if rows.empty or not all(c in rows for c in cols) or rows[cols].isna().any(axis=None):
        return None
    return [float(rows[c].median()) for c in cols], "median"


def percentiles_chart(kit: ReportKit) -> Any | None:
    """One panel per offered rate: queue latency percentiles per backend."""
    frame = kit.frame
    if not kit.has_data or "params.rate_label" not in frame:
        return None
    cells = kit.cells
    labels = sorted({str(x) for x in frame["params.rate_label"].dropna()} - {"max"},
                    key=rate_order)
    if not labels:
        return None
    cols = min(3, len(labels))
    nrows = math.ceil(len(labels) / cols)
    fig = kit.figure(3.4 * cols + 1.8, 3.0 * nrows + 0.4)
    axes = fig.subplots(nrows, cols, sharey=True, squeeze=False).ravel()
    sources: set[str] = set()
    shown: set[str] = set()
    missing: dict[str, tuple[str, str]] = {}
    drawn = False
    gaps: dict[str, list[tuple[str, str]]] = {}
    few: dict[tuple[str, str], int] = {}  # (panel, series): too few jobs for a percentile
    for ax, label in zip(axes, labels, strict=False):
        here = frame[frame["params.rate_label"] == label]
        for series, rows in here.groupby("series", sort=False):
            backend = rows["backend"].iloc[0]
            found = percentiles_of(cells[cells["key"].isin(rows["key"])], rows)
            if found is None:
                missing.setdefault(str(series), (str(backend), kit.state_of(rows)))
                gaps.setdefault(label, []).append((str(series), kit.state_of(rows)))
                continue
            ys, source = found
            samples = samples_of(cells[cells["key"].isin(rows["key"])], source)
            kept = supported(ys, samples)
            if not kept:  # not even a median: a gap, as a missing value is
                gaps.setdefault(label, []).append((str(series),
                                                   f"{counted(samples or 0, 'job')} only"))
                continue
            if len(kept) < len(ys):
                few[(label, str(series))] = samples or 0
            shown.add(str(series))
            sources.add(source)
            drawn = True
            ax.plot(range(len(kept)), kept, marker="o", color=kit.colour(backend),
                    label=series, linestyle=kit.line_style(str(series)))
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
        # wrapped to the panel's width, or a long list runs into the next panel's title
        gap = textwrap.fill("no value: " + ", ".join(lacking), PANEL_TITLE_CHARS,
                            break_on_hyphens=False)
        ax.set_title(f"offered: {label}" + (f"\n{gap}" if lacking else ""), fontsize=10)
    kit.plain_log_y(axes[0])
    for row_start in range(0, len(axes), cols):
        axes[row_start].set_ylabel("queue latency, ms (log)")
    handles: dict[str, Any] = {}
    for ax in axes:
        for handle, name in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(name, handle)
    absent: list[Any] = []
    for series, (backend, state) in missing.items():
        if series not in shown:
            kit.note_absent(absent, series, backend, state)
    fig.legend([*handles.values(), *absent], [*handles, *(h.get_label() for h in absent)],
               loc="outside right upper", fontsize=9, frameon=False)
    fig.suptitle("Queue latency percentiles (intended send \u2192 start) per offered rate")
    how = {"hdr": "merged HdrHistograms of all ok rounds",
           "median": "medians of per-round percentiles (no histograms in results)"}
    notes = kit.gap_notes(frame[frame["params.rate_label"] != "max"],
                          lambda r: point_name(kit, r))
    notes += producer_limited_notes(frame)
    grouped: dict[tuple[str, int], list[str]] = {}
    for (label, series), n in few.items():
        grouped.setdefault((label, n), []).append(series)
    notes += [f"offered {label}: {n} jobs with a latency ({', '.join(names)}), too few for "
              f"the higher percentiles (p90 needs 10, p99 100, p99.9 1,000); their lines "
              f"stop there" for (label, n), names in grouped.items()]
    return kit.chart("latency_percentiles", "Latency percentiles per backend", fig,
                     "Computed from " + " and ".join(how[s] for s in sorted(sources))
                     + ". Evenly spaced percentile categories; log y.", notes)


def rate_chart(kit: ReportKit) -> Any | None:
    """p50 and p99 queue latency against the offered rate, saturation on the top edge."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    frame = kit.frame
    if not kit.has_data or "params.rate" not in frame:
        return None
    rated = frame[frame["params.rate"].notna() & (frame["params.rate_label"] != "max")]
    if rated.empty or "latency_ms.p99" not in rated:
        return None
    fig = kit.figure(11, 4.6)
    axes = fig.subplots(1, 2, sharey=True)
    any_saturated = marked = False
    absent: list[Any] = []
    for ax, key, name in ((axes[0], "latency_ms.p50", "p50"), (axes[1], "latency_ms.p99", "p99")):
        for series, backend, rows, _ok in kit.present(rated, key, absent):
            rows = rows.assign(_rate=rows["params.rate"].astype(float)).sort_values("_rate")
            ok = kit.ok_rows(rows, key)
            ax.plot(ok["_rate"], ok[key], marker="o", color=kit.colour(backend), label=series,
                    linestyle=kit.line_style(series))
            saturated = rows[(rows["status"] == "ok") & rows["saturated"]]
            any_saturated |= kit.edge_marks(ax, saturated["_rate"], backend, top=True)
            marked |= kit.edge_marks(ax, rows[rows["status"] != "ok"]["_rate"], backend)
            top = frame[(frame["series"] == series) & (frame["params.rate_label"] == "max")]
            if not top.empty and kit.value(top.iloc[0], "jobs_per_s"):
                ax.axvline(kit.value(top.iloc[0], "jobs_per_s"), color=kit.colour(backend),
                           linestyle=":", linewidth=1, alpha=0.7)
        ax.set_xscale("log")
        # labelled plainly, 1-2-5 over a narrow range (matplotlib would label its minor
        # ticks in powers of ten, one over the other), powers of ten over a wide one
        low, high = ax.get_xlim()
        narrow = low > 0 and high / low < 300
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if narrow else (1.0,)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: kit.fmt_num(v, 2)))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("offered rate, jobs/s (log)")
        ax.set_title(f"{name} queue latency")
        ax.grid(True, which="major", alpha=0.3)
    kit.plain_log_y(axes[0])
    axes[0].set_ylabel("queue latency, ms (log)")
    extra = kit.gap_handles(marked, any_saturated) + [
        Line2D([], [], color="0.4", linestyle=":", label="dotted: measured max rate")] + absent
    kit.legend_outside(axes[1], extra)
    fig.suptitle("Queue latency vs offered rate (open loop)")
    notes = kit.gap_notes(rated, lambda r: point_name(kit, r))
    notes += producer_limited_notes(rated)
    return kit.chart("latency_vs_rate", "Latency vs offered rate", fig,
                     "Each point is one offered rate (fixed, or a fraction of the backend's own "
                     "measured maximum). Saturated: the backlog kept growing, so no latency is "
                     "reported.", notes)
