"""What a scenario's table and chart hooks get from the report (reports/sections.py).

Scenarios sit below reports, so they never import it: the report hands each
scenario's hooks a kit bound to that scenario's data, and the hooks build
their tables and charts with it. Tables and charts are opaque here (Any):
the hooks return what the kit made.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import pandas as pd

Rows = pd.DataFrame  # aggregates: one row per (backend, profile, params), see reports/data.py


class ReportKit(Protocol):
    frame: Rows  # this scenario's aggregates, backends in registry order
    cells: pd.DataFrame  # this scenario's cells (raw metrics in `raw`)
    has_data: bool  # at least one ok aggregate

    # -- values and formatting ------------------------------------------------------
    def value(self, row: pd.Series, metric: str, stat: str = "median") -> float | None: ...

    def param(self, row: pd.Series, name: str) -> Any: ...

    def numeric_params(self, name: str, frame: Rows | None = None) -> list[float]:
        """The distinct numeric values of a parameter, sorted."""
        ...

    def nearest(self, values: list[float], target: float) -> float | None:
        """The value closest to `target` on a log scale, if within a factor 2 of it."""
        ...

    def fmt(self, metric: str, value: float) -> str:
        """A figure of `metric` in its declared unit."""
        ...

    def above_ceiling(self, cells: pd.DataFrame, backend: str, param: str,
                      point: float, profile: str) -> str:
        """'ABOVE <ceiling> (round N)' where `backend` drained faster than its broker's
        raw ceiling in the same profile at this point in some round, else ''."""
        ...

    def fmt_num(self, value: float | None, digits: int = 3) -> str: ...

    def fmt_bytes(self, value: float | None) -> str: ...

    def colour(self, backend: str) -> str: ...

    def line_style(self, series: str) -> str:
        """Solid, dashed (reliable) or dotted (tuned): a backend's profiles apart."""
        ...

    # -- tables ----------------------------------------------------------------------
    def column(self, label: str, where: Mapping[str, Any], metric: str, *,
               extra: Callable[[pd.Series], str] | None = None,
               zero_is_goal: bool = False,
               absent: Callable[[pd.Series], str | None] | None = None) -> Any:
        """A column of `metric` over the rows whose params equal `where`; best and
        ties are marked by the metric's declared direction (or good = 0 in every
        round when `zero_is_goal`); `extra` adds text after the figure; `absent`
        says why a row has no figure when that is by design."""
        ...

    def table(self, title: str, columns: list[Any], note: str, *, slug: str | None = None,
              frame: Rows | None = None, series_col: str = "series",
              explanations: Iterable[tuple[str, str]] = ()) -> Any:
        """A verdict table, one row per `series_col` of `frame` (default: all rows)."""
        ...

    def params_table(self, metric: str) -> Any:
        """`metric` at each parameter point, one column each (the default table)."""
        ...

    # -- charts ----------------------------------------------------------------------
    def figure(self, width: float, height: float) -> Any:
        """A matplotlib Figure outside pyplot, constrained layout."""
        ...

    def chart(self, slug: str, title: str, figure: Any, caption: str,
              notes: list[str]) -> Any: ...

    def present(self, frame: Rows, metric: str, absent: list[Any]
                ) -> list[tuple[str, str, Rows, Rows]]:
        """(series, backend, rows, ok rows) of series with a value; the others get a
        legend entry in `absent`."""
        ...

    def ok_rows(self, rows: Rows, metric: str) -> Rows: ...

    def state_of(self, rows: Rows) -> str:
        """Why a series has no value at all: 'skipped', 'failed', 'saturated'..."""
        ...

    def note_absent(self, absent: list[Any], series: str, backend: str, state: str) -> None: ...

    def errors(self, rows: Rows, metric: str) -> Any:
        """Asymmetric error bars from the [min, max] across rounds."""
        ...

    def edge_marks(self, ax: Any, xs: Iterable[float], backend: str, top: bool = False
                   ) -> bool:
        """An 'x' on the bottom (or top) edge for points without a value."""
        ...

    def gap_handles(self, bottom: bool, top: bool = False, flagged: bool = False,
                    ring_label: str = ...) -> list[Any]: ...

    def flag_rings(self, ax: Any, rows: Rows, xs: Sequence[float], ys: Sequence[float],
                   backend: str, flags: Sequence[str] = ...) -> bool:
        """A ring around the points whose figure was flagged (by default unstable or
        producer-bound; reports.charts.FLAG_COUNTS)."""
        ...

    def flagged_rows(self, rows: Rows, flags: Sequence[str] = ...) -> list[bool]:
        """Per row, whether any of its `flags` round counts is above zero."""
        ...

    def gap_notes(self, frame: Rows, where: Callable[[pd.Series], str]) -> list[str]:
        """One line per series for its failed/skipped/saturated points, with the reason."""
        ...

    def legend_outside(self, ax: Any, extra: list[Any] | None = None) -> None: ...

    def plain_log_y(self, ax: Any) -> None: ...

    def bytes_axis(self, ax: Any, sizes: list[float]) -> None: ...
