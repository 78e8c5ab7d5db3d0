"""The crash-recovery scenario's report: lost, late and duplicated jobs per fault, as
tables (worker faults by settings profile, broker kill by persistence) and as bar charts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from adapters import BACKENDS
from scenarios.presentation import ReportKit, Rows

NOTE = ("\u2713: no job lost in any round; \u2717: jobs lost (median over rounds "
        "shown, range below). Late jobs ended only after the window (re-delivered after a "
        "timeout); duplicates are jobs run more than once.")
# the worker faults, as the report names them
WORKER_FAULT_TITLES = {
    "job-process-kill": "Job process killed (SIGKILL) mid-job",
    "node-kill": "Worker node killed (SIGKILL to its whole process tree) mid-job",
}


def _columns(kit: ReportKit, frame: Rows, name: str, label: str) -> list[Any]:
    def text(row: pd.Series) -> str:
        dup = kit.value(row, "duplicated")
        late = kit.value(row, "late")
        jobs = kit.param(row, "jobs")
        if dup is None:
            return "lost"
        return (f"lost \u00b7 {kit.fmt_num(late)} late \u00b7 " if late else "lost \u00b7 ") \
            + f"{kit.fmt_num(dup)} duplicated" + (f" of {kit.fmt_num(jobs)}" if jobs else "")

    return [kit.column(label.format(setting), {name: setting}, "lost", extra=text,
                       zero_is_goal=True)
            for setting in dict.fromkeys(str(v) for v in frame[f"params.{name}"].dropna())]


def _explanations(kit: ReportKit, frame: Rows, name: str, label: str
                  ) -> list[tuple[str, str]]:
    """The scenario's own one-line account of each ok cell (why jobs were lost)."""
    if "explanation" not in frame:
        return []
    return [(f"{row['row']}, {label.format(kit.param(row, name))}", str(row["explanation"]))
            for _, row in frame.iterrows()
            if row["status"] == "ok" and isinstance(row["explanation"], str)
            and row["explanation"]]


def _same_kill_note(fault: str, frame: Rows) -> str:
    """For node-kill: the backends whose node is their job process, which ran it once."""
    if fault != "node-kill":
        return ""
    same = [f"{name} ({BACKENDS[name].crash.node_is_job_process})"
            for name in dict.fromkeys(frame["backend"])
            if name in BACKENDS and BACKENDS[name].crash.node_is_job_process]
    return (" Not run where a node is the process that runs the job, so node-kill is "
            "job-process-kill: " + "; ".join(same) + ".") if same else ""


def tables(kit: ReportKit) -> list[Any]:
    frame = kit.frame.copy()
    if frame.empty or "params.fault" not in frame:
        return [kit.table("Crash recovery", [], "")]
    out = []
    for fault, title in WORKER_FAULT_TITLES.items():
        workers = frame[frame["params.fault"] == fault]
        if workers.empty:
            continue
        workers = workers.assign(row=workers["backend"])
        if "params.mode" not in workers:
            workers = workers.assign(**{"params.mode": workers["profile"]})
        out.append(kit.table(f"{title}, by settings profile",
                             _columns(kit, workers, "mode", "{} profile"),
                             NOTE + _same_kill_note(fault, frame),
                             slug=f"crash-recovery-{fault}", frame=workers, series_col="row",
                             explanations=_explanations(kit, workers, "mode", "{} profile")))
    brokers = frame[frame["params.fault"] == "broker-kill"]
    if not brokers.empty and "params.persistence" in brokers:
        modes = brokers["params.mode"] if "params.mode" in brokers else brokers["profile"]
        many = modes.nunique() > 1
        brokers = brokers.assign(row=brokers["backend"] + (" [" + modes.astype(str) + "]"
                                                           if many else ""))
        only = "" if many else f" ({modes.iloc[0]} profile)"
        out.append(kit.table(
            "Broker killed (kill -9) with jobs queued, by persistence setting" + only,
            _columns(kit, brokers, "persistence", "persistence {}"), NOTE,
            slug="crash-recovery-broker-kill", frame=brokers, series_col="row",
            explanations=_explanations(kit, brokers, "persistence", "persistence {}")))
    return out


def _is_reliable(kit: ReportKit, row: pd.Series) -> bool:
    persistence = kit.param(row, "persistence")
    if persistence is not None:
        return str(persistence) not in ("off", "transient")
    return str(kit.param(row, "mode") or row["profile"]) != "default"


def chart(kit: ReportKit, fault: str, slug: str, title: str,
          label: Callable[[pd.Series], str]) -> Any | None:
    """Horizontal bars, one row per backend and setting; lost / duplicated / completed."""
    from matplotlib.ticker import MaxNLocator

    frame = kit.frame
    if "params.fault" not in frame:
        return None
    frame = frame[frame["params.fault"] == fault]
    if frame.empty or not (frame["status"] == "ok").any():
        return None
    absent: list[Any] = []
    shown = []
    notes = []
    for backend, rows in frame.groupby("backend", sort=False):
        if (rows["status"] == "ok").any():
            shown.append(rows)
        else:
            kit.note_absent(absent, str(backend), str(backend), kit.state_of(rows))
            first = rows.iloc[0]
            notes.append(f"{backend} (every setting) \u2014 {first['status']}: "
                         f"{first['reason'] or 'no reason given'}; not plotted")
    frame = pd.concat(shown)
    names = [label(row) for _, row in frame.iterrows()]
    fig = kit.figure(14, 1.6 + 0.32 * len(names))
    axes = fig.subplots(1, 4, sharey=True)
    ys = list(range(len(names)))[::-1]
    for ax, metric, xlabel in ((axes[0], "lost", "jobs lost"),
                               (axes[1], "late", "jobs late (after the window)"),
                               (axes[2], "duplicated", "jobs run more than once"),
                               (axes[3], "completed", "jobs completed in the window")):
        for y, (_, row) in zip(ys, frame.iterrows(), strict=True):
            got = kit.value(row, metric) if row["status"] == "ok" else None
            if got is None:
                ax.axhspan(y - 0.4, y + 0.4, facecolor="none", edgecolor="0.7", hatch="xx",
                           linewidth=0)
                ax.text(0.02, y, f"{row['status']}" if row["status"] != "ok" else "n/a",
                        va="center", ha="left", color="0.25", fontsize=8,
                        transform=ax.get_yaxis_transform())
                continue
            ax.barh(y, got, height=0.7, color=kit.colour(row["backend"]),
                    hatch="//" if _is_reliable(kit, row) else "", edgecolor="white")
            jobs = kit.param(row, "jobs")
            text = kit.fmt_num(got) + (f" of {kit.fmt_num(jobs)}"
                                       if metric == "completed" and jobs else "")
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
    notes = kit.gap_notes(frame.assign(series=names), lambda r: "") + notes
    return kit.chart(slug, title, fig,
                     "Bars: median over rounds. Hatched bars: a worker fault in the reliable "
                     "profile, or a broker kill with a persistent broker setting (every broker "
                     "kill runs in the reliable profile, so there the hatch tells the broker's "
                     "persistence apart). A cross-hatched row: failed or skipped, no value.",
                     notes)


def charts(kit: ReportKit) -> list[Any]:
    param = kit.param
    return [
        *(chart(kit, fault, f"crash_{fault.replace('-', '_')}",
                f"{title}: lost / late / duplicated / completed",
                lambda r: f"{r['backend']} \u00b7 {param(r, 'mode') or r['profile']}")
          for fault, title in WORKER_FAULT_TITLES.items()),
        chart(kit, "broker-kill", "crash_broker_kill",
              "Broker killed (kill -9) with queued jobs, by persistence setting",
              lambda r: f"{r['backend']} \u00b7 persistence {param(r, 'persistence')}"
              + (f" \u00b7 {param(r, 'mode')}" if param(r, "mode") not in (None, "default")
                 else "")),
    ]
