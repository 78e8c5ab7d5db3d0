"""Another profile beside the default one (tuned: what the docs advise for throughput;
reliable: against lost jobs, on a durable broker): each backend's headline figure in both,
and what the other profile changed."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from adapters import BACKENDS
from reports.data import RunData
from reports.style import describe_params, row_params
from reports.verdict import flagged_rounds
from scenarios import in_report_order
from scenarios.base import Scenario

BASE = "default"
# The profiles set against the default one, in report order: what they run, what their
# ratio to default shows.
COMPARED = {
    "tuned": {"note": "The tuned profile runs the settings each library's own docs recommend "
                      "for throughput; every setting it changed is listed with the doc it "
                      "comes from.",
              "shows": "what the docs' throughput settings gain"},
    "reliable": {"note": "The reliable profile runs the settings each library's docs recommend "
                         "against lost jobs, on a durable broker: Redis with appendonly yes and "
                         "appendfsync everysec, RabbitMQ with durable queues and persistent "
                         "messages, PostgreSQL with its WAL fsynced (broker_persistence); every "
                         "setting that differs from the default cells' is listed.",
                 "shows": "what durability costs"},
}
ONE_ROUND = "1 round a side: this run does not measure its own noise"
# Settings that differ between any two profiles' cells without being a change of theirs.
NOT_CHANGES = ("profile",)


@dataclass(frozen=True)
class Pair:
    """One backend at one parameter point of one scenario, in the default and another profile."""

    scenario: str
    backend: str
    point: str  # its parameters, for people
    metric: str
    unit: str
    profile: str  # the other profile
    default: float
    value: float  # the other profile's figure
    changes: dict[str, str]  # setting -> its value there (and source); empty: same as default
    caveat: str = ""  # which side's figure was unstable or producer-bound in a round

    @property
    def ratio(self) -> float | None:
        return self.value / self.default if self.default else None

    @property
    def noise_only(self) -> bool:
        """No setting differs from default: the ratio is two runs of the same settings."""
        return not self.changes

    def line(self) -> str:
        ratio = f" (x{self.ratio:.2f})" if self.ratio is not None else ""
        if self.noise_only and self.ratio is not None:
            ratio += " same settings: the ratio is run-to-run noise"
        caveat = f"; {self.caveat}" if self.caveat else ""
        return (f"{self.scenario} {self.backend} {self.point}: {self.metric} default "
                f"{self.default:,.1f} {self.unit}, {self.profile} {self.value:,.1f} "
                f"{self.unit}{ratio}{caveat}")


def caveat_of(sides: dict[str, pd.Series]) -> str:
    """'unstable: default; producer-bound: reliable': which side's steady-state figure
    was not clean in some round, so the ratio is read with care ('' when both were)."""
    parts = []
    for flag, words in (("unstable", "unstable"), ("producer_bound", "producer-bound")):
        which = [name for name, row in sides.items() if flagged_rounds(row, flag)]
        if which:
            parts.append(f"{words}: {' and '.join(which)}")
    return "; ".join(parts)


def headline_metric(scenario: Scenario) -> str | None:
    """The figure a profile is compared on: the scenario's first gated metric."""
    return next((name for name, metric in scenario.metrics.items() if metric.gated), None)


def _settings(data: RunData, key: str) -> dict[str, Any]:
    """The settings of an ok cell of the aggregate `key` (empty: none recorded)."""
    cells = data.cells
    if cells.empty or "settings" not in cells:
        return {}
    mine = cells[(cells["key"] == key) & (cells["status"] == "ok")]
    return next((s for s in mine["settings"] if isinstance(s, dict) and s), {})


def changes(data: RunData, profile: str, base: pd.Series, other: pd.Series) -> dict[str, str]:
    """What `profile` changed: as its cells report it (`<profile>_changes`, with the docs
    they come from), else every setting whose value differs from the default cell's."""
    mine, theirs = _settings(data, other["key"]), _settings(data, base["key"])
    reported = mine.get(f"{profile}_changes")
    if reported:
        return dict(reported)
    skip = {*NOT_CHANGES, f"{profile}_changes"}
    return {name: f"{value} (default: {theirs.get(name)})" for name, value in mine.items()
            if name not in skip and theirs.get(name) != value}


def no_change_note(backend: str, profile: str) -> str:
    """Why `profile` = default for a backend that changed nothing (its backend.toml line)."""
    info = BACKENDS.get(backend)
    return info.profiles.get(profile, "") if info else ""


def _key(row: pd.Series) -> str:
    params = {k: row[k] for k in row.index if k.startswith("params.") and not pd.isna(row[k])}
    return json.dumps([row["backend"], params], sort_keys=True, default=str)


def pairs(data: RunData, profile: str) -> list[Pair]:
    """Every backend and parameter point that ran ok in both the default profile and
    `profile`. A pair of one round a side says how far this run's same-settings pairs
    (a profile that changed nothing for a backend) moved: the noise its ratio must clear."""
    found = measured_pairs(data, profile)
    noise = [max(p.ratio, 1 / p.ratio) for other in COMPARED
             for p in (found if other == profile else measured_pairs(data, other))
             if p.noise_only and p.ratio]
    if not noise:
        return found
    span = f"; same-settings pairs in this run moved by up to x{max(noise):.2f}"
    return [dataclasses.replace(p, caveat=p.caveat + span) if ONE_ROUND in p.caveat else p
            for p in found]


def measured_pairs(data: RunData, profile: str) -> list[Pair]:
    """The pairs of `profile` as measured, each with its own caveat. A case whose cells
    all reused another's result (latency's max, payload's 64 B: the throughput noop cell)
    is that pair again, so it is left out."""
    cells = data.cells
    copies = {key for key, group in cells.groupby("key") if (group["reused_from"] != "").all()}
    out: list[Pair] = []
    for scenario in in_report_order():
        metric = headline_metric(scenario)
        frame = data.scenario(scenario.name)
        if metric is None or frame.empty or metric not in frame:
            continue
        ok = frame[(frame["status"] == "ok") & frame[metric].notna()
                   & ~frame["key"].isin(copies)]
        by_profile = {p: {_key(r): r for _, r in ok[ok["profile"] == p].iterrows()}
                      for p in (BASE, profile)}
        for key, other in by_profile[profile].items():
            base = by_profile[BASE].get(key)
            if base is None:
                continue
            caveat = caveat_of({BASE: base, profile: other})
            if min(base.get("rounds_ok") or 1, other.get("rounds_ok") or 1) < 2:
                caveat = "; ".join(filter(None, (caveat, ONE_ROUND)))
            point = describe_params(row_params(other))
            out.append(Pair(scenario.name, other["backend"], point, metric,
                            scenario.metrics[metric].unit, profile, float(base[metric]),
                            float(other[metric]), changes(data, profile, base, other),
                            caveat))
    return out


def rows(data: RunData, profile: str) -> list[dict[str, Any]]:
    """The report's rows for `profile`: one per pair, with its changes or why there are none."""
    return [{"pair": pair, "changes": sorted(pair.changes.items()),
             "none": "" if pair.changes else no_change_note(pair.backend, profile)}
            for pair in pairs(data, profile)]


def comparisons(data: RunData) -> list[dict[str, Any]]:
    """Each compared profile that has pairs in this run: {"profile", "note", "shows",
    "rows"}."""
    found = [{**texts, "profile": profile, "rows": rows(data, profile)}
             for profile, texts in COMPARED.items()]
    return [comparison for comparison in found if comparison["rows"]]


def summary_lines(data: RunData, profile: str) -> list[str]:
    """Plain lines for the terminal after a run: each pair, then what `profile` set."""
    lines = []
    for row in rows(data, profile):
        lines.append(row["pair"].line())
        lines += [f"    {profile} {name} = {change}" for name, change in row["changes"]]
        if row["none"]:
            lines.append(f"    {profile} = {row['none']}")
    return lines
