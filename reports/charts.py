"""The building blocks of the report's charts (the charts themselves are the scenarios'
chart hooks, see reports/sections.py).

Figures are built with matplotlib's object API (no pyplot state, Agg
rendering). A chart hook returns None when its scenario has no data. A
failed, skipped or saturated point is never drawn as a value: it is an
"x" on the axis edge in the backend's colour (bars: a hatched gap), and
its reason goes into the chart's notes.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, NullLocator

from reports.style import colour, fmt_bytes, fmt_num

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
    """One line per series for its failed/skipped/saturated points, with the reason, and
    for its producer-bound ones."""
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
        if "saturated_rounds" in rows:
            some = rows[(rows["status"] == "ok") & ~rows["saturated"]
                        & (rows["saturated_rounds"] > 0)]
            for _, row in some.iterrows():
                notes.append(f"{series} ({where(row)}) \u2014 saturated in "
                             f"{int(row['saturated_rounds'])} of {int(row['rounds_ok'])} "
                             f"rounds; plotted from the others")
        if "producer_bound_rounds" in rows:
            fed_short = rows[(rows["status"] == "ok") & (rows["producer_bound_rounds"] > 0)]
            if len(fed_short):
                points = ", ".join(where(r) for _, r in fed_short.iterrows())
                notes.append(f"{series} ({points}) \u2014 producer-bound: the queue ran dry "
                             f"inside the window, so the point is a lower bound")
    return notes


def edge_marks(ax: Axes, xs: Iterable[float], backend: str, top: bool = False) -> bool:
    """An 'x' at the bottom (or top) edge of the axes for points without a value."""
    xs = list(xs)
    if xs:
        ax.plot(xs, [0.96 if top else 0.03] * len(xs), linestyle="none", marker="x",
                markersize=9, markeredgewidth=2, color=colour(backend),
                transform=ax.get_xaxis_transform(), clip_on=False, zorder=5)
    return bool(xs)


FLAG_COUNTS = ("unstable_rounds", "producer_bound_rounds")  # reports/data.py, per row
RING_LABEL = "ring: unstable or producer-bound in a round"


def flagged_rows(rows: pd.DataFrame, flags: Sequence[str] = FLAG_COUNTS) -> list[bool]:
    """Per row of `rows`, whether any of its `flags` round counts is above zero."""
    return [any(pd.to_numeric(row.get(col), errors="coerce") > 0 for col in flags)
            for _, row in rows.iterrows()]


def flag_rings(ax: Axes, rows: pd.DataFrame, xs: Sequence[float], ys: Sequence[float],
               backend: str, flags: Sequence[str] = FLAG_COUNTS) -> bool:
    """A ring around each point (xs, ys: one per row of `rows`) whose figure was flagged
    in a round: by default unstable (a short window, a per-second CV above 10%) or
    producer-bound (a lower bound). A figure to read with care, drawn as plainly as the
    others otherwise."""
    flagged = flagged_rows(rows, flags)
    points = [(x, y) for x, y, hit in zip(xs, ys, flagged, strict=True) if hit]
    if points:
        ax.plot([x for x, _ in points], [y for _, y in points], linestyle="none", marker="o",
                markersize=14, markerfacecolor="none", markeredgecolor=colour(backend),
                markeredgewidth=1.5, zorder=4)
    return bool(points)


def gap_handles(bottom: bool, top: bool = False, flagged: bool = False,
                ring_label: str = RING_LABEL) -> list[Line2D]:
    """Legend entries explaining the edge marks and rings that were drawn."""
    handles = []
    if flagged:
        handles.append(Line2D([], [], linestyle="none", marker="o", markersize=11,
                              markerfacecolor="none", markeredgecolor="0.4", label=ring_label))
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
    if "producer_limited" in rows and rows["producer_limited"].eq(True).any():
        states.append("producer-limited")  # the producer could not offer the rate
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
