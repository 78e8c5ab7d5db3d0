"""The verdict tables: each backend's headline figures per scenario, best and ties marked.

Tie rule (stated on the page): the best median wins; another backend ties
with it when their [min, max] ranges across rounds overlap (either side has
2+ ok rounds), or, with a single round each, when the medians differ by less
than 5%. A difference inside the noise is not called.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from reports.data import RunData, param, value
from reports.style import fmt_bytes, fmt_num

TIE_PCT = 5.0
TIE_RULE = (f"best = highest (or lowest, where lower is better) median over rounds. "
            f"Another backend ties with the best when their [min, max] ranges across rounds "
            f"overlap, or, when both ran a single round, when the two differ by less than "
            f"{TIE_PCT:g}%. Ties are marked \u2248; only differences outside that noise are "
            f"called.")


@dataclass
class Entry:
    """One table cell: its text, status (ok/failed/skipped/missing/saturated) and mark."""

    text: str
    status: str = "ok"
    mark: str = ""  # "best" | "best-tie" | "tie" | "good" | "bad" | ""
    detail: str = ""  # range across rounds, shown as a tooltip and in small print
    median: float | None = None
    low: float | None = None
    high: float | None = None
    n: int = 0

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
    """Mark the best entry and those tied with it (needs two measured entries)."""
    measured = [e for e in entries if e.status == "ok" and e.median is not None]
    if len(measured) < 2:
        return
    best = (max if higher_is_better else min)(measured, key=lambda e: e.median or 0.0)
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
            backlog = value(row, "backlog")
            text = "saturated" + (f" (backlog {fmt_num(backlog)})" if backlog else "")
            return Entry(text, status="saturated")
        return Entry(f"no {column.metric} in results", status="missing")
    low, high = value(row, column.metric, "min"), value(row, column.metric, "max")
    n = int(value(row, column.metric, "n") or 1)
    detail = (f"{n} rounds: {column.fmt(low)} .. {column.fmt(high)}"
              if n > 1 and low is not None and high is not None else "1 round")
    extra = column.extra(row)
    text = column.fmt(median) + (f" {extra}" if extra else "")
    if row.get("rounds_ok", 0) < row.get("rounds", 0):
        detail += f"; only {row['rounds_ok']} of {row['rounds']} rounds ok"
    return Entry(text, detail=detail, median=median, low=low, high=high, n=n)


def build(frame: pd.DataFrame, scenario: str, title: str, columns: list[Column],
          note: str, series_col: str = "series") -> Table:
    table = Table(scenario, title, [c.label for c in columns], note=note)
    if frame.empty:
        return table
    series = list(dict.fromkeys(frame[series_col]))
    grid = {}
    for name in series:
        mine = frame[frame[series_col] == name]
        grid[name] = [entry_of(column.select(mine), column, mine) for column in columns]
    for index, column in enumerate(columns):
        entries = [grid[s][index] for s in series]
        if column.zero_is_goal:
            for entry in entries:
                if entry.status == "ok" and entry.median is not None:
                    entry.mark = "good" if (entry.high or entry.median) == 0 else "bad"
        else:
            mark(entries, column.higher_is_better)
    table.rows = [(name, grid[name]) for name in series]
    return table


def _eq(name: str, wanted: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def select(frame: pd.DataFrame) -> pd.DataFrame:
        col = f"params.{name}"
        return frame[frame[col] == wanted] if col in frame else frame.iloc[0:0]
    return select


def _per_s(v: float) -> str:
    return f"{fmt_num(v)}/s"


def _ms(v: float) -> str:
    return f"{fmt_num(v)} ms"


def nearest(values: list[float], target: float, factor: float = 2.0) -> float | None:
    """The value closest to `target` on a log scale, if within `factor` of it."""
    near = [v for v in values if v > 0 and target / factor <= v <= target * factor]
    return min(near, key=lambda v: abs(v / target - 1)) if near else None


def numeric_params(frame: pd.DataFrame, name: str) -> list[float]:
    col = f"params.{name}"
    if col not in frame:
        return []
    return sorted({float(v) for v in frame[col].dropna() if isinstance(v, int | float)})


def throughput_table(data: RunData) -> Table:
    frame = data.scenario("throughput")
    columns = []
    for duration in numeric_params(frame, "duration_ms"):
        label = "no-op jobs" if duration == 0 else f"{fmt_num(duration)} ms jobs"
        ideal = frame[frame["params.duration_ms"] == duration].get("ideal_jobs_per_s")
        if ideal is not None and ideal.notna().any():
            label += f" (ideal {_per_s(float(ideal.dropna().iloc[0]))})"
        columns.append(Column(label, _eq("duration_ms", duration), "jobs_per_s", True, _per_s))
    return build(frame, "throughput", "Throughput: completed jobs/s by job duration",
                 columns, "Higher is better; every backend has the same number of slots")


def mid_rate_label(frame: pd.DataFrame) -> str | None:
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


def latency_table(data: RunData) -> Table:
    frame = data.scenario("latency")
    columns = []
    label = mid_rate_label(frame)
    if label:
        columns.append(Column(f"p99 queue latency at {label}", _eq("rate_label", label),
                              "latency_ms.p99", False, _ms))
    if "params.rate_label" in frame and (frame["params.rate_label"] == "max").any():
        columns.append(Column("max rate, closed loop", _eq("rate_label", "max"),
                              "jobs_per_s", True, _per_s))
    return build(frame, "latency", "Latency: p99 queue latency (intended send -> start)",
                 columns, "p99: lower is better; max rate: higher is better. Latency is "
                 "measured from the intended send time (open loop)")


def payload_table(data: RunData) -> Table:
    frame = data.scenario("payload")
    sizes = numeric_params(frame, "payload_bytes")
    columns = []
    for target in (1024, 1024 ** 2):
        size = nearest(sizes, target)
        if size is not None:
            columns.append(Column(f"jobs/s at {fmt_bytes(size)}", _eq("payload_bytes", size),
                                  "jobs_per_s", True, _per_s))
    return build(frame, "payload", "Payload: throughput at 1 KiB and 1 MiB per job", columns,
                 "Higher is better")


def memory_table(data: RunData) -> Table:
    frame = data.scenario("memory")
    sizes = numeric_params(frame, "payload_bytes")
    if len(sizes) > 3:
        sizes = sorted({sizes[0], nearest(sizes, 1024) or sizes[0], sizes[-1]})
    columns = [Column(f"per job at {fmt_bytes(s)} payload", _eq("payload_bytes", s),
                      "bytes_per_job", False, fmt_bytes) for s in sizes]
    return build(frame, "memory", "Memory: broker bytes per queued job", columns,
                 "Lower is better; no worker runs while the jobs are queued")


def _crash_text(row: pd.Series) -> str:
    dup = value(row, "duplicated")
    jobs = param(row, "jobs")
    return (f"lost \u00b7 {fmt_num(dup)} duplicated" + (f" of {fmt_num(jobs)}" if jobs else "")
            if dup is not None else "lost")


CRASH_NOTE = ("\u2713: no job lost in any round; \u2717: jobs lost (median over rounds "
              "shown, range below). Duplicates are jobs run more than once.")


def _crash_columns(frame: pd.DataFrame, name: str, label: str) -> list[Column]:
    columns = []
    for setting in dict.fromkeys(str(v) for v in frame[f"params.{name}"].dropna()):
        columns.append(Column(label.format(setting), _eq(name, setting), "lost", False,
                              fmt_num, extra=_crash_text, zero_is_goal=True))
    return columns


def _explanations(frame: pd.DataFrame, name: str, label: str) -> list[tuple[str, str]]:
    """The scenario's own one-line account of each ok cell (why jobs were lost)."""
    if "explanation" not in frame:
        return []
    return [(f"{row['row']}, {label.format(param(row, name))}", str(row["explanation"]))
            for _, row in frame.iterrows()
            if row["status"] == "ok" and isinstance(row["explanation"], str)
            and row["explanation"]]


def crash_tables(data: RunData) -> list[Table]:
    """Worker kill by settings profile, broker kill by persistence: lost and duplicated."""
    frame = data.scenario("crash-recovery").copy()
    if frame.empty or "params.fault" not in frame:
        return [build(frame, "crash-recovery", "Crash recovery", [], "")]
    tables = []
    workers = frame[frame["params.fault"] == "worker-kill"]
    if not workers.empty:
        workers = workers.assign(row=workers["backend"])
        if "params.mode" not in workers:
            workers = workers.assign(**{"params.mode": workers["profile"]})
        tables.append(build(workers, "crash-recovery-worker-kill",
                            "Worker killed (SIGKILL) mid-job, by settings profile",
                            _crash_columns(workers, "mode", "{} profile"), CRASH_NOTE,
                            series_col="row"))
        tables[-1].explanations = _explanations(workers, "mode", "{} profile")
    brokers = frame[frame["params.fault"] == "broker-kill"]
    if not brokers.empty and "params.persistence" in brokers:
        modes = brokers["params.mode"] if "params.mode" in brokers else brokers["profile"]
        many = modes.nunique() > 1
        brokers = brokers.assign(row=brokers["backend"] + (" [" + modes.astype(str) + "]"
                                                           if many else ""))
        only = "" if many else f" ({modes.iloc[0]} profile)"
        tables.append(build(brokers, "crash-recovery-broker-kill",
                            "Broker killed (kill -9) with jobs queued, by persistence setting"
                            + only,
                            _crash_columns(brokers, "persistence", "persistence {}"),
                            CRASH_NOTE, series_col="row"))
        tables[-1].explanations = _explanations(brokers, "persistence", "persistence {}")
    return tables


TABLES: dict[str, Callable[[RunData], list[Table]]] = {
    "throughput": lambda d: [throughput_table(d)], "latency": lambda d: [latency_table(d)],
    "payload": lambda d: [payload_table(d)], "memory": lambda d: [memory_table(d)],
    "crash-recovery": crash_tables,
}


def library_cost(data: RunData, ceilings: dict[str, str]) -> Table:
    """Each library backend's throughput as a share of its broker's raw ceiling."""
    frame = data.scenario("throughput")
    table = Table("throughput", "Library cost on top of the broker",
                  [f"{'no-op' if d == 0 else fmt_num(d) + ' ms'} jobs"
                   for d in numeric_params(frame, "duration_ms")],
                  note="share = library jobs/s \u00f7 raw client jobs/s on the same broker, "
                       "medians over rounds; 100% = no cost on top of the broker")
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
        for duration in durations:
            lib = mine[mine["params.duration_ms"] == duration]
            raw = frame[(frame["backend"] == ceiling) & (frame["params.duration_ms"] == duration)]
            entries.append(_share(lib, raw, ceiling))
        table.rows.append((f"{series} vs {ceiling}", entries))
    return table


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
    return Entry(f"{mine / top:.0%}", detail=f"{_per_s(mine)} of {_per_s(top)}",
                 median=mine / top)


def tables(data: RunData) -> dict[str, list[Table]]:
    """Every scenario's tables; a configured backend with no cell at all gets a 'not run' row."""
    config = data.run.get("config") or {}
    wanted = [b for b in config.get("backends") or [] if isinstance(b, str)]
    out = {}
    for name, make in TABLES.items():
        out[name] = make(data)
        frame = data.scenario(name)
        if frame.empty:
            continue
        missing = [b for b in wanted if b not in set(frame["backend"])]
        for table in out[name]:
            if table.columns:
                table.rows += [(b, [Entry("not run", status="missing")
                                    for _ in table.columns]) for b in missing]
    return out
