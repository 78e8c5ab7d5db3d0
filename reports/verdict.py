"""The verdict tables: each backend's headline figures per scenario, best and ties marked.

Tie rule (stated on the page): the best median wins; another backend ties
with it when their [min, max] ranges across rounds overlap (either side has
2+ ok rounds), or, with a single round each, when the medians differ by less
than 5%. A difference inside the noise is not called.

The raw-broker ceilings are yardsticks, not choices: their rows are shown
and never ranked, so the star goes to a backend a reader could pick (the
fastest noop figure of a run is usually redis-raw's).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from adapters import BACKENDS, CEILINGS
from reports.data import RunData, value
from reports.style import fmt_bytes, fmt_cpu_us, fmt_num, fmt_share
from scenarios.common import WINDOW_FIGURES
from scenarios.stats import samples_needed

TIE_PCT = 5.0
# Of a sleeping job's ideal rate (slots / duration): a ceiling at or above it is held by
# the clock and each job's own overhead, not by its consumer. In the full run at 76f4d3d
# amqp-raw's 10 ms jobs ran at 742/s of 800 and dramatiq-rabbitmq's at 762/s.
CLOCK_BOUND = 0.9
YARDSTICK_NOTE = "ceiling, not ranked"
TIE_RULE = (f"best = highest (or lowest, where lower is better) median over rounds (a "
            f"latency percentile: of all rounds' jobs together, their histograms merged). "
            f"Another backend ties with the best when their [min, max] ranges across rounds "
            f"overlap, or, when both ran a single round, when the two differ by less than "
            f"{TIE_PCT:g}%. Ties are marked \u2248; only differences outside that noise are "
            f"called.")


@dataclass
class Entry:
    """One table cell: its text, status (ok/failed/skipped/missing/saturated) and mark."""

    text: str
    status: str = "ok"
    mark: str = ""  # "best" | "best-tie" | "tie" | "good" | "bad" | "yardstick" | ""
    detail: str = ""  # range across rounds, shown as a tooltip and in small print
    median: float | None = None
    low: float | None = None
    high: float | None = None
    n: int = 0
    lower_bound: bool = False  # the producer may have set the pace: never ranked
    partial: bool = False  # from some rounds only (the others saturated): never ranked

    @property
    def css(self) -> str:
        if self.status != "ok":
            return self.status
        return "num " + {"best-tie": "best"}.get(self.mark, self.mark)

    @property
    def symbol(self) -> str:
        return {"best": "\u2605 ", "best-tie": "\u2605\u2248 ", "tie": "\u2248 ", "good": "\u2713 ",
                "bad": "\u2717 "}.get(self.mark, "")


@dataclass
class Column:
    label: str
    select: Callable[[pd.DataFrame], pd.DataFrame]
    metric: str
    higher_is_better: bool
    fmt: Callable[[float], str]
    extra: Callable[[pd.Series], str] = lambda row: ""
    zero_is_goal: bool = False  # mark each entry good (0 in every round) or bad, no ranking
    # why a row has no figure when that is by design (e.g. "no second queue"); None: missing
    absent: Callable[[pd.Series], str | None] = lambda row: None


@dataclass
class Table:
    scenario: str
    title: str
    columns: list[str]
    rows: list[tuple[str, list[Entry]]] = field(default_factory=list)
    note: str = ""
    explanations: list[tuple[str, str]] = field(default_factory=list)  # (where, why)


def overlaps(a: Entry, b: Entry) -> bool:
    """Whether `a` and `b` are within noise of each other (the tie rule)."""
    if a.median is None or b.median is None:
        return False
    if max(a.n, b.n) >= 2:
        lo_a, hi_a = a.low if a.low is not None else a.median, a.high or a.median
        lo_b, hi_b = b.low if b.low is not None else b.median, b.high or b.median
        return lo_a <= hi_b and lo_b <= hi_a
    top = max(abs(a.median), abs(b.median))
    return top == 0 or abs(a.median - b.median) / top * 100 < TIE_PCT


def mark(entries: list[Entry], higher_is_better: bool) -> None:
    """Mark the best entry and those tied with it (needs two entries to rank: measured
    ones, or a measured one beside a saturated one, which could not keep up and so lost).
    A lower bound (a producer-bound figure) is never marked, and no best is called while
    one is at or above the best of the others."""
    measured = [e for e in entries if e.status == "ok" and e.median is not None]
    bounds = [e for e in measured if e.lower_bound]
    measured = [e for e in measured if not e.lower_bound and not e.partial]
    saturated = sum(e.status == "saturated" for e in entries)
    if not measured or len(measured) + saturated < 2:
        return
    best = (max if higher_is_better else min)(measured, key=lambda e: e.median or 0.0)
    if higher_is_better and any((e.median or 0.0) >= (best.median or 0.0) for e in bounds):
        return  # a backend held back by its producer may be the fastest: no best called
    best.mark = "best"
    ties = [e for e in measured if e is not best and overlaps(best, e)]
    for entry in ties:
        entry.mark = "tie"
    if ties:
        best.mark = "best-tie"


def entry_of(rows: pd.DataFrame, column: Column, fallback: pd.DataFrame | None = None
             ) -> Entry:
    """The entry for one series in one column: a figure, or why there is none.

    `fallback` (all the series' rows) explains an empty column: a backend
    skipped everywhere says so rather than "not run".
    """
    if rows.empty:
        if fallback is not None and len(fallback) and (fallback["status"] != "ok").all():
            first = fallback.iloc[0]
            return Entry(f"{first['status']}: {first['reason'] or 'no reason given'}",
                         status=first["status"])
        return Entry("not run", status="missing")
    row = rows.iloc[0]
    if row["status"] != "ok":
        return Entry(f"{row['status']}: {row['reason'] or 'no reason given'}",
                     status=row["status"])
    median = value(row, column.metric)
    if median is None:
        if bool(row.get("saturated")):
            backlog, growth = value(row, "backlog"), value(row, "wait_growth")
            why = [f"backlog {fmt_num(backlog)}"] if backlog else []
            if growth is not None:
                why.append(f"wait {growth:+.2f} s per s")
            text = "saturated" + (f" ({', '.join(why)})" if why else "")
            return Entry(text, status="saturated")
        why = column.absent(row)
        if why:
            return Entry(why, status="skipped")
        return Entry(f"no {column.metric} in results", status="missing")
    low, high = value(row, column.metric, "min"), value(row, column.metric, "max")
    n = int(value(row, column.metric, "n") or 1)
    detail = (f"{n} rounds: {column.fmt(low)} .. {column.fmt(high)}"
              if n > 1 and low is not None and high is not None else "1 round")
    extra = column.extra(row)
    text = column.fmt(median) + (f" {extra}" if extra else "")
    if row.get("rounds_ok", 0) < row.get("rounds", 0):
        detail += f"; only {row['rounds_ok']} of {row['rounds']} rounds ok"
    counted = value(row, "window_jobs")
    if counted is not None and column.metric == "jobs_per_s":  # a rate with its job count
        detail += f"; {fmt_num(counted)} jobs counted in the window"
    ideal = value(row, "ideal_jobs_per_s")
    if ideal and column.metric == "jobs_per_s":  # sleeping jobs: how far from slots / duration
        detail += (f"; {fmt_share(median / ideal)} of the ideal {fmt_num(ideal)}/s "
                   "(slots / duration)")
    steadiness = value(row, "stability_cv")
    if steadiness is not None:
        detail += f"; per-second CV {steadiness:.0%}"
    cpu = value(row, "cpu_us_per_job")
    if cpu is not None:
        detail += f"; workers' CPU {fmt_cpu_us(cpu)} per job"
    unstable = flagged_rounds(row, "unstable") if column.metric in WINDOW_FIGURES else 0
    if unstable:
        text += " (unstable)"
        cv = value(row, "stability_cv", "max")
        detail += (f"; not steady in {unstable} of {row.get('rounds_ok', n)} rounds "
                   f"(window short of W, or per-second CV above 10%"
                   f"{f'; CV up to {cv:.0%}' if cv is not None else ''}): rank with care")
    saturated = flagged_rounds(row, "saturated")
    if saturated:  # the other rounds could not keep up: the figure is the rest's
        text += f" (saturated in {saturated} of {row.get('rounds_ok', n)} rounds)"
        detail += (f"; in {saturated} of {row.get('rounds_ok', n)} rounds the backend could "
                   f"not keep up with the rate, so they have no latency: the figure is the "
                   f"other rounds', not ranked")
    untested = flagged_rounds(row, "untested")
    if untested:  # a worker kill that hit no running job shows nothing about recovery
        text += f" (kill hit no running job in {untested} of {row.get('rounds_ok', n)} rounds)"
        detail += (f"; in {untested} of {row.get('rounds_ok', n)} rounds no job was running "
                   f"on the killed process, so those rounds show no re-delivery either way: "
                   f"no \u2713")
    samples = value(row, "samples")  # an open-loop cell's; an idle probe's otherwise
    if noisy := flagged_rounds(row, "noisy"):  # the broker moved as much with no job queued
        text += " (noisy)"
        detail += (f"; in {noisy} of {row.get('rounds_ok', n)} rounds the zero-job control "
                   f"moved by a quarter or more of this figure's total: not ranked")
    if flagged_rounds(row, "whole_broker"):
        text += " (whole broker)"
        detail += ("; the broker gives no reading of this queue alone, so this is its whole "
                   "memory's growth (see measured)")
    needed = samples_needed(column.metric)
    samples = samples if samples is not None else value(row, "latency_samples")
    few = bool(needed and samples is not None and samples * n < needed)
    if few:  # a p99 of 60 jobs is their largest: no figure to rank
        text += f" (from {fmt_num(samples * n)} jobs)"
        detail += (f"; {fmt_num(samples * n)} jobs are too few for this percentile (it "
                   f"needs {needed}): not ranked")
    if not column.higher_is_better:  # a window's feed bounds rates, not latencies
        return Entry(text, detail=detail, median=median, low=low, high=high, n=n,
                     partial=bool(saturated or untested or few or noisy))
    busy = value(row, "window_producer_busy_s", "max")
    if busy:
        detail += (f"; the driver had to top the queue up inside the window (sending for up "
                   f"to {busy:.2g} s of it), so the figure includes the producer's share of "
                   f"the CPU")
    fed_short = flagged_rounds(row, "producer_bound")
    if fed_short:
        text += " (producer-bound)"
        detail += (f"; the queue ran dry inside the window in {fed_short} of "
                   f"{row.get('rounds_ok', n)} rounds: the producer may have set the pace, "
                   f"so the figure is a lower bound for the backend, not ranked")
    return Entry(text, detail=detail, median=median, low=low, high=high, n=n,
                 lower_bound=bool(fed_short))


def flagged_rounds(row: pd.Series, flag: str) -> int:
    """How many of a row's ok rounds a steady-state cell flagged `flag` (0 where the row
    has no such count: not a steady-state cell, or an older summary)."""
    count = pd.to_numeric(row.get(f"{flag}_rounds"), errors="coerce")
    return 0 if pd.isna(count) else int(count)


def build(frame: pd.DataFrame, scenario: str, title: str, columns: list[Column],
          note: str, series_col: str = "series") -> Table:
    table = Table(scenario, title, [c.label for c in columns], note=note)
    if frame.empty:
        return table
    series = list(dict.fromkeys(frame[series_col]))
    grid = {}
    yardsticks = set()
    for name in series:
        mine = frame[frame[series_col] == name]
        grid[name] = [entry_of(column.select(mine), column, mine) for column in columns]
        if "backend" in mine and set(mine["backend"]) <= CEILINGS:
            yardsticks.add(name)
    for index, column in enumerate(columns):
        for name in yardsticks:
            entry = grid[name][index]
            if entry.status == "ok" and not column.zero_is_goal:
                entry.mark = "yardstick"
                entry.detail = f"{entry.detail}; {YARDSTICK_NOTE}"
        entries = [grid[s][index] for s in series if s not in yardsticks or column.zero_is_goal]
        if column.zero_is_goal:
            for entry in entries:
                if entry.status == "ok" and entry.median is not None:
                    lost = (entry.high or entry.median) != 0
                    entry.mark = "bad" if lost else ("" if entry.partial else "good")
        else:
            mark(entries, column.higher_is_better)
    table.rows = [(name, grid[name]) for name in series]
    return table


def where(params: dict[str, Any]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Rows whose params equal `params` (none when a param is not a column)."""
    def select(frame: pd.DataFrame) -> pd.DataFrame:
        for name, wanted in params.items():
            col = f"params.{name}"
            if col not in frame:
                return frame.iloc[0:0]
            frame = frame[frame[col] == wanted]
        return frame
    return select


def per_s(v: float) -> str:
    return f"{fmt_num(v)}/s"


def formatter(unit: str) -> Callable[[float], str]:
    """How a table shows a figure in `unit` (a metric's declared unit)."""
    if unit == "bytes":
        return fmt_bytes
    if unit == "jobs/s":
        return per_s
    if unit in ("", "jobs"):
        return fmt_num
    return lambda v: f"{fmt_num(v)} {unit}"


def nearest(values: list[float], target: float, factor: float = 2.0) -> float | None:
    """The value closest to `target` on a log scale, if within `factor` of it."""
    near = [v for v in values if v > 0 and target / factor <= v <= target * factor]
    return min(near, key=lambda v: abs(v / target - 1)) if near else None


def numeric_params(frame: pd.DataFrame, name: str) -> list[float]:
    col = f"params.{name}"
    if col not in frame:
        return []
    return sorted({float(v) for v in frame[col].dropna() if isinstance(v, int | float)})


def library_cost(data: RunData, ceilings: dict[str, str]) -> Table:
    """Each library backend's throughput as a share of its broker's raw ceiling."""
    frame = data.scenario("throughput")
    table = Table("throughput", "Library cost on top of the broker",
                  [f"{'no-op' if d == 0 else fmt_num(d) + ' ms'} jobs"
                   for d in numeric_params(frame, "duration_ms")],
                  note="share = library jobs/s \u00f7 raw client jobs/s on the same broker, "
                       "medians over rounds; 100% = no cost on top of the broker. A share "
                       "marked ABOVE CEILING means that in some round the library drained "
                       "faster than the raw client of that round: the ceiling is not one; "
                       "one marked (unstable) rests on a figure whose window was short or "
                       "uneven (a per-second CV above 10%) in some round. At no-op a raw "
                       "client writes one record per fetched batch where a library's job "
                       "writes two per job, so part of a library's no-op cost is the "
                       "recording's (its observer effect: python -m harness selftest)")
    if frame.empty:
        return table
    durations = numeric_params(frame, "duration_ms")
    for series in dict.fromkeys(frame["series"]):
        mine = frame[frame["series"] == series]
        backend = mine["backend"].iloc[0]
        ceiling = ceilings.get(backend)
        if not ceiling:
            continue
        entries = []
        cells = data.scenario_cells("throughput")
        profile = mine["profile"].iloc[0]  # each profile against its own ceiling
        for duration in durations:
            lib = mine[mine["params.duration_ms"] == duration]
            raw = frame[(frame["backend"] == ceiling) & (frame["params.duration_ms"] == duration)
                        & (frame["profile"] == profile)]
            entry = _share(lib, raw, f"{ceiling} [{profile}]" if profile != "default"
                           else ceiling)
            rounds = rounds_above(cells, backend, ceiling, "duration_ms", duration, profile)
            if rounds and entry.status == "ok":
                entry.text += " ABOVE CEILING"
                entry.mark = "bad"
                entry.detail += f"; above {ceiling} in round {', '.join(map(str, rounds))}"
            entries.append(entry)
        table.rows.append((f"{series} vs {ceiling}", entries))
    return table


def rounds_above(cells: pd.DataFrame, backend: str, ceiling: str, param: str, point: float,
                 profile: str) -> list[int]:
    """Rounds in which `backend` drained faster than its ceiling at this parameter point
    (a job duration, a payload size), the ceiling being below the clock's limit: where
    sleeping jobs hold the ceiling at CLOCK_BOUND of their ideal (slots / duration) or
    more, both sit at what the clock allows, and which of the two ends a few jobs higher
    is the window's noise."""
    column = f"params.{param}"
    if cells.empty or "jobs_per_s" not in cells or column not in cells:
        return []
    ok = cells[(cells["status"] == "ok") & (cells[column] == point)
               & (cells["profile"] == profile)]  # each profile against its own ceiling
    lib = ok[ok["backend"] == backend].groupby("round")["jobs_per_s"].max()
    mine = ok[ok["backend"] == ceiling]
    top = mine.groupby("round")["jobs_per_s"].max()
    ideal = (mine.groupby("round")["ideal_jobs_per_s"].max()
             if "ideal_jobs_per_s" in mine else pd.Series(dtype=float))
    both = lib.index.intersection(top.index)
    return sorted(int(r) for r in both if lib[r] > top[r]
                  and not top[r] >= CLOCK_BOUND * ideal.get(r, float("inf")))


def above_ceiling(cells: pd.DataFrame, backend: str, param: str, point: float,
                  profile: str) -> str:
    """'ABOVE redis-raw (round 2)' where a library drained faster than its broker's raw
    ceiling in the same profile at this point in some round ('' otherwise, and for a
    backend with none)."""
    info = BACKENDS.get(backend)
    ceiling = info.ceiling if info else None
    rounds = rounds_above(cells, backend, ceiling, param, point, profile) if ceiling else []
    if not rounds:
        return ""
    return f"ABOVE {ceiling} (round{'s' if len(rounds) > 1 else ''} {', '.join(map(str, rounds))})"


def _share(lib: pd.DataFrame, raw: pd.DataFrame, ceiling: str) -> Entry:
    if lib.empty:
        return Entry("not run", status="missing")
    row = lib.iloc[0]
    if row["status"] != "ok":
        return Entry(f"{row['status']}: {row['reason']}", status=row["status"])
    if raw.empty:
        return Entry(f"{ceiling} not measured in this run", status="missing")
    base = raw.iloc[0]
    if base["status"] != "ok":
        return Entry(f"{ceiling} {base['status']}: {base['reason']}", status=base["status"])
    mine, top = value(row, "jobs_per_s"), value(base, "jobs_per_s")
    if not mine or not top:
        return Entry("no jobs_per_s in results", status="missing")
    detail = f"{per_s(mine)} of {per_s(top)}"
    unsteady = False
    for side, figures in (("the library", row), (ceiling, base)):
        if dry := flagged_rounds(figures, "producer_bound"):
            detail += (f"; {side}'s queue ran dry inside the window in {dry} of "
                       f"{figures.get('rounds_ok')} rounds: its figure is a lower bound")
        if shaky := flagged_rounds(figures, "unstable"):
            unsteady = True
            detail += (f"; {side}'s figure is unstable (a short window or a per-second CV "
                       f"above 10%) in {shaky} of {figures.get('rounds_ok')} rounds")
    shown = fmt_share(mine / top) + (" (unstable)" if unsteady else "")
    return Entry(shown, detail=detail, median=mine / top)


def add_not_run(data: RunData, name: str, tables: list[Table]) -> None:
    """A configured backend with no cell at all in scenario `name` gets a 'not run' row."""
    frame = data.scenario(name)
    if frame.empty:
        return
    config = data.run.get("config") or {}
    wanted = [b for b in config.get("backends") or [] if isinstance(b, str)]
    missing = [b for b in wanted if b not in set(frame["backend"])]
    for table in tables:
        if table.columns:
            table.rows += [(b, [Entry("not run", status="missing") for _ in table.columns])
                           for b in missing]
