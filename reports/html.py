"""Assemble the page: what the run is, what is missing, tables, charts, claims, environment.

The HTML is rendered from reports/templates/report.html with autoescaping;
charts are embedded as data: URIs, so the file opens from disk with no
network and no JavaScript.
"""

from __future__ import annotations

import base64
from collections import defaultdict
from pathlib import Path
from typing import Any

import jinja2

from adapters import BACKENDS
from core.words import counted
from reports.charts import Chart
from reports.claims import ClaimResult
from reports.data import RunData
from reports.observer import interval_text, load_observer
from reports.profiles import comparisons
from reports.runtime import run_time
from reports.speed import machine_speed
from reports.style import backend_rank, colour, describe_params, row_params
from reports.verdict import TIE_RULE, Table
from scenarios import in_report_order

# Packages worth a line of their own besides the backends' key packages (backend.toml);
# the full list of each environment is folded away.
KEY_PACKAGES = ("python", "queuebench")


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def brief(params: dict[str, Any]) -> str:
    """A cell's params in a report list: without the run's slots and the job count."""
    return describe_params(params, hide=("slots", "jobs"), sep=", ")


def slowed_on_purpose(data: RunData) -> str | None:
    """The sentence a run made with the gate's test knob must open with, else None."""
    delay = (data.run.get("config") or {}).get("inject_delay_us")
    if not delay:
        return None
    return (f"Every library job of this run burnt {delay} us of CPU on purpose "
            f"(--inject-delay-us, the regression gate's test knob; the raw ceilings did "
            f"not): its figures show a deliberately slowed library, not the library.")


def completeness(data: RunData) -> list[str]:
    """Sentences on what this run lacks; empty for a complete run."""
    run, cells = data.run, data.cells
    planned, done = run.get("planned_cells"), len(cells)
    complete = run.get("complete") is True
    if complete and (not isinstance(planned, int) or done >= planned):
        return []
    lines = []
    if run.get("interrupted"):
        lines.append(f"This run was interrupted ({run['interrupted']}); the cells that "
                     f"finished are shown.")
    elif not complete:
        lines.append("This run has not finished (complete = false): it is still going, or it "
                     "was killed before it could say so. The cells that finished are shown.")
    if isinstance(planned, int) and planned > done:
        lines.append(f"{planned - done} of {planned} planned cells never ran.")
    config = run.get("config") or {}
    scenarios = [s for s in config.get("scenarios") or [] if isinstance(s, str)]
    backends = [b for b in config.get("backends") or [] if isinstance(b, str)]
    seen = set(zip(cells.get("scenario", []), cells.get("backend", []), strict=True))
    empty_scenarios = [s for s in scenarios if not any(s == a for a, _ in seen)]
    empty_backends = [b for b in backends if not any(b == x for _, x in seen)]
    if empty_scenarios:
        kind = "scenario" if len(empty_scenarios) == 1 else "scenarios"
        lines.append(f"No data at all for {kind}: " + ", ".join(empty_scenarios) + ".")
    if empty_backends:
        kind = "backend" if len(empty_backends) == 1 else "backends"
        lines.append(f"No data at all for {kind}: " + ", ".join(empty_backends) + ".")
    pairs = [f"{s} \u00d7 {b}" for s in scenarios for b in backends
             if (s, b) not in seen and s not in empty_scenarios and b not in empty_backends]
    if pairs:
        lines.append("No data for: " + ", ".join(pairs) + ".")
    return lines


def counts(data: RunData) -> dict[str, int]:
    statuses = list(data.cells["status"]) if not data.cells.empty else []
    return {s: statuses.count(s) for s in ("ok", "failed", "skipped")}


def settings_table(data: RunData) -> list[dict[str, Any]]:
    """Per backend and profile: every setting with all the values its cells reported."""
    merged: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(dict)
    for _, cell in data.cells.iterrows():
        mine = merged[(cell["backend"], cell["profile"])]
        for key, val in (cell.get("settings") or {}).items():
            values = mine.setdefault(key, [])
            shown = setting_text(val)
            if shown not in values:
                values.append(shown)
    rows = []
    for (backend, profile) in sorted(merged, key=lambda k: (backend_rank(k[0]), k[1])):
        settings = merged[(backend, profile)]
        rows.append({"backend": backend, "profile": profile, "colour": colour(backend),
                     "settings": [(k, " | ".join(v)) for k, v in sorted(settings.items())]})
    return rows


def setting_text(value: Any) -> str:
    """A recorded setting as the report words it: nothing set (None, an empty mapping or
    list) reads "none", as the adapters' own texts do, not as a Python literal."""
    if value is None or (isinstance(value, dict | list | tuple) and not value):
        return "none"
    return str(value)


def key_packages(family: str) -> list[str]:
    """The key packages of the family's backends (a variant family "celery@5.6.3":
    celery's), then KEY_PACKAGES."""
    declared = [name for info in BACKENDS.values() if info.family == family.partition("@")[0]
                for name in info.key_packages]
    return list(dict.fromkeys([*declared, *KEY_PACKAGES]))


def libraries(data: RunData) -> list[dict[str, Any]]:
    versions = data.run.get("library_versions") or {}
    config_backends = (data.run.get("config") or {}).get("backends") or []
    out = []
    for family, packages in sorted(versions.items()):
        if not isinstance(packages, dict):
            continue
        users = [b for b in config_backends if b in BACKENDS and BACKENDS[b].family == family]
        key = [(n, packages[n]) for n in key_packages(family) if n in packages]
        out.append({"family": family, "backends": users, "key": key,
                    "all": sorted(packages.items())})
    return out


def plain(value: Any) -> str:
    """A config value for people: lists joined, empty things as 'none', an option left
    unset (None) as the scenario grid's default it stood for."""
    if value is None:
        return "not set (the scenario grid's, quick or full)"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value)) or "none"
    if isinstance(value, dict):  # nested ones (a --with checkout's path and commit) bracketed
        return ", ".join(f"{k}=({plain(v)})" if isinstance(v, dict) else f"{k}={plain(v)}"
                         for k, v in value.items()) or "none"
    return str(value)


def brokers(run: dict[str, Any]) -> list[tuple[str, str, str]]:
    versions = run.get("broker_versions") or {}
    urls = run.get("brokers") or {}
    return [(k, str(versions.get(k, "?")), str(urls.get(k, "")))
            for k in dict.fromkeys([*versions, *urls])]


def problems(data: RunData) -> dict[str, list[dict[str, Any]]]:
    """Skipped cells folded per backend and reason; failed cells one by one."""
    skipped: dict[tuple[str, str], list[str]] = defaultdict(list)
    failed = []
    for _, cell in data.cells.iterrows():
        if cell["status"] == "skipped":
            scenarios = skipped[(cell["backend"], cell["reason"] or "no reason given")]
            if cell["scenario"] not in scenarios:
                scenarios.append(cell["scenario"])
        elif cell["status"] == "failed":
            failed.append({"scenario": cell["scenario"], "backend": cell["backend"],
                           "profile": cell["profile"], "round": cell["round"],
                           "params": brief(row_params(cell)), "reason": cell["reason"],
                           "cell_dir": cell["cell_dir"]})
    return {"skipped": [{"backend": b, "reason": r, "scenarios": s}
                        for (b, r), s in skipped.items()], "failed": failed}


def cell_list(data: RunData) -> list[dict[str, Any]]:
    return [{"scenario": c["scenario"], "backend": c["backend"], "profile": c["profile"],
             "round": c["round"], "params": brief(row_params(c)), "status": c["status"],
             "reason": c["reason"]} for _, c in data.cells.iterrows()]


def observer(run_dir: Path) -> dict[str, Any] | None:
    """The self-test's observer effect saved with this run (observer.json), as rows."""
    saved = load_observer(run_dir)
    if saved is None:
        return None
    rows = [{"backend": b, "effect": f"{r['effect']:+.1%}" if r["status"] == "ok" else None,
             "interval": interval_text(r), "limit": f"{r['limit']:.0%}",
             "passed": r.get("passed"), "reason": r.get("reason")}
            for b, r in saved["backends"].items()]
    return {"date": saved["date"], "repeats": saved["repeats"], "rows": rows,
            "alternating": "segments" in saved}


def context(data: RunData, tables: dict[str, list[Table]], cost: Table, charts: list[Chart],
            claims: list[ClaimResult]) -> dict[str, Any]:
    by_scenario: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for chart in charts:
        by_scenario[chart.scenario].append({
            "title": chart.title, "slug": chart.slug, "src": data_uri(chart.png),
            "caption": chart.caption, "notes": chart.notes})
    scenarios = in_report_order()
    known = [s.name for s in scenarios]
    extra = [s for s in dict.fromkeys(data.cells.get("scenario", [])) if s not in known]
    return {
        "run": data.run, "run_dir": str(data.run_dir), "counts": counts(data),
        "missing": completeness(data), "slowed": slowed_on_purpose(data),
        "scenarios": known, "extra_scenarios": extra,
        "titles": {s.name: s.title for s in scenarios}, "tables": tables,
        "tie_rule": TIE_RULE, "cost": cost,
        "has_data": {s: data.has_data(s) for s in known},
        "has_rows": {s: not data.scenario(s).empty for s in known},
        "charts": by_scenario, "claims": claims, "settings": settings_table(data),
        "profiles": comparisons(data),
        "libraries": libraries(data), "brokers": brokers(data.run), "problems": problems(data),
        "config": [(k, plain(v)) for k, v in (data.run.get("config") or {}).items()],
        "cells": cell_list(data), "observer": observer(data.run_dir),
        "run_time": run_time(data), "speed": machine_speed(data),
        "colours": {b: colour(b) for b in sorted(set(data.cells.get("backend", [])),
                                                 key=backend_rank)},
        "descriptions": {b: i.description for b, i in BACKENDS.items()},
    }


def render_page(ctx: dict[str, Any]) -> str:
    env = jinja2.Environment(loader=jinja2.PackageLoader("reports", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["counted"] = counted
    return env.get_template("report.html").render(**ctx)
