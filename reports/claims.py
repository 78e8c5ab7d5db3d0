"""Widely repeated claims (reports/claims.json) checked against a run's own numbers.

A claim is data: which scenario, which aggregates (`where`, `exclude`,
`backends`, `pick`), how to group them (`per`), which metric and statistic,
and a comparison (`test`). What that format cannot say lives in a small
registry of named evaluators (EVALUATORS) that a claim references by name.
Every verdict carries the figure it was decided on. docs/report.md
documents the format.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import pandas as pd

from adapters import BACKENDS, CEILINGS
from core.words import counted
from reports.data import RunData, param, value
from reports.style import fmt_num, fmt_share
from reports.verdict import flagged_rounds
from scenarios.scaling import rises_up_to, with_linear_efficiency

HOLDS, FAILS, UNMEASURED = "holds", "does not hold", "not measured in this run"
OPS: dict[str, Callable[[float, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
    "between": lambda v, bounds: bounds[0] <= v <= bounds[1],
}
STATS = ("median", "min", "max")
UNSTABLE = "a short window or a per-second CV above 10%"
# a percentile of a recorded histogram: its aggregate is the rounds' histograms merged
# (scenarios.stats.merged_round_percentiles), not a median of the rounds' percentiles
PERCENTILE = re.compile(r"_ms\.(p\d+|max)$")


@dataclass
class Finding:
    subject: str
    verdict: str
    figure: str


@dataclass
class ClaimResult:
    id: str
    claim: str
    rule: str
    verdict: str
    findings: list[Finding] = field(default_factory=list)


class ClaimFormatError(ValueError):
    """claims.json does not follow the format (a bug in the file, not in the run)."""


def load_claims(text: str | None = None) -> list[dict[str, Any]]:
    """The claims from reports/claims.json (or `text`), checked against the format."""
    raw = text if text is not None else (
        resources.files("reports").joinpath("claims.json").read_text(encoding="utf-8"))
    data = json.loads(raw)
    claims = data.get("claims") if isinstance(data, dict) else None
    if not isinstance(claims, list) or data.get("format") != 1:
        raise ClaimFormatError("claims.json: expected {'format': 1, 'claims': [...]}")
    for claim in claims:
        check_claim(claim)
    return claims


def check_claim(claim: dict[str, Any]) -> None:
    name = claim.get("id", "?")
    for key in ("id", "claim", "scenario"):
        if not isinstance(claim.get(key), str):
            raise ClaimFormatError(f"claim {name}: {key!r} must be a string")
    if "evaluator" in claim:
        if claim["evaluator"] not in EVALUATORS:
            raise ClaimFormatError(f"claim {name}: unknown evaluator {claim['evaluator']!r}")
        return
    test = claim.get("test")
    if not isinstance(claim.get("metric"), str) or not isinstance(test, dict):
        raise ClaimFormatError(f"claim {name}: needs 'metric' and 'test' (or 'evaluator')")
    if test.get("op") not in OPS:
        raise ClaimFormatError(f"claim {name}: test op must be one of {', '.join(OPS)}")
    if claim.get("stat", "median") not in STATS:
        raise ClaimFormatError(f"claim {name}: stat must be one of {', '.join(STATS)}")
    pick = claim.get("pick")
    if pick is not None and pick.get("how") not in ("min", "max", "nearest"):
        raise ClaimFormatError(f"claim {name}: pick.how must be min, max or nearest")


# -- selection ---------------------------------------------------------------------------
def _matches(cell: Any, wanted: Any) -> bool:
    options = wanted if isinstance(wanted, list) else [wanted]
    for option in options:
        if isinstance(option, int | float) and isinstance(cell, int | float):
            if not pd.isna(cell) and math.isclose(float(cell), float(option)):
                return True
        elif cell == option:
            return True
    return False


def select(data: RunData, claim: dict[str, Any]) -> pd.DataFrame:
    """The aggregates a claim is about: where/exclude on params, backends by registry."""
    frame = data.scenario(claim["scenario"])
    for name, wanted in (claim.get("where") or {}).items():
        col = f"params.{name}"
        if col not in frame:
            return frame.iloc[0:0]
        frame = frame[frame[col].map(lambda c, w=wanted: _matches(c, w))]
    for name, unwanted in (claim.get("exclude") or {}).items():
        col = f"params.{name}"
        if col in frame:
            frame = frame[~frame[col].map(lambda c, u=unwanted: _matches(c, u))]
    wanted_backends = claim.get("backends") or {}
    if "broker" in wanted_backends:  # a broker kind, or "any" for every broker-backed one
        kind = wanted_backends["broker"]
        frame = frame[frame["backend"].map(
            lambda b: b in BACKENDS and BACKENDS[b].broker is not None
            and kind in ("any", BACKENDS[b].broker))]
    if wanted_backends.get("libraries_only") and not frame.empty:  # no raw ceiling
        frame = frame[frame["backend"].map(lambda b: b not in CEILINGS).astype(bool)]
    if "names" in wanted_backends:
        frame = frame[frame["backend"].isin(wanted_backends["names"])]
    return frame


def group_column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in ("backend", "profile", "series"):
        return frame[name].astype(str)
    col = f"params.{name}"
    return frame[col].astype(str) if col in frame else frame["profile"].astype(str)


def pick_row(rows: pd.DataFrame, pick: dict[str, Any] | None) -> pd.DataFrame:
    """One aggregate per group: min/max/nearest of a param (null sorts lowest), ok first."""
    if pick is None or rows.empty:
        return rows
    ok = rows[rows["status"] == "ok"]
    pool = ok if not ok.empty else rows
    col = f"params.{pick['param']}"
    if col not in pool:
        return pool.iloc[0:1]
    raw = pool[col].map(lambda v: float(v) if isinstance(v, int | float) and not pd.isna(v)
                        else -math.inf)
    if pick["how"] == "min":
        return pool.loc[[raw.idxmin()]]
    if pick["how"] == "max":
        return pool.loc[[raw.idxmax()]]
    target = float(pick["target"])
    distance = raw.map(lambda v: abs(math.log(v / target)) if v > 0 else math.inf)
    return pool.loc[[distance.idxmin()]]


# -- declarative evaluation --------------------------------------------------------------
def fields(row: pd.Series) -> dict[str, Any]:
    """Names usable in a claim's figure: params by name, metric medians with _ for dots."""
    out: dict[str, Any] = {"backend": row["backend"], "profile": row["profile"]}
    for key, raw in row.items():
        if not isinstance(key, str) or ":" in key or raw is None:
            continue
        if isinstance(raw, float) and math.isnan(raw):
            continue
        if isinstance(raw, float) and raw.is_integer():
            raw = int(raw)
        out.setdefault(key.removeprefix("params.").replace(".", "_"), raw)
    return out


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def figure_text(claim: dict[str, Any], row: pd.Series, measured: float) -> str:
    template = claim.get("figure") or "{metric} = {value}"
    values = _Blank(fields(row))
    values.update(value=measured, value_scaled=measured * float(claim.get("scale", 1.0)),
                  metric=claim.get("metric"))
    try:
        return template.format_map(values)
    except (ValueError, TypeError):  # a number format on a missing (?) field
        return f"{claim.get('metric')} = {fmt_num(measured)}"


def judge_row(claim: dict[str, Any], row: pd.Series) -> Finding:
    subject = ""
    if row["status"] != "ok":
        return Finding(subject, UNMEASURED, f"{row['status']}: {row['reason']}")
    stat = claim.get("stat", "median")
    measured = value(row, claim["metric"], stat)
    if measured is None:
        why = "saturated" if bool(row.get("saturated")) else f"no {claim['metric']} in results"
        return Finding(subject, UNMEASURED, why)
    test = claim["test"]
    holds = OPS[test["op"]](measured, test["value"])
    figure = figure_text(claim, row, measured)
    if (claim["metric"] == "jobs_per_s" and flagged_rounds(row, "producer_bound")
            and not lower_bound_decides(test["op"], holds)):
        return Finding(subject, UNMEASURED, f"{figure}, a lower bound (the queue ran dry "
                                            f"inside the window): it cannot decide")
    if holds and (untested := flagged_rounds(row, "untested")):
        return Finding(subject, UNMEASURED, f"{figure}, but in {untested} of "
                                            f"{row.get('rounds_ok') or untested} rounds the "
                                            f"kill hit no running job: it cannot decide")
    if noisy := flagged_rounds(row, "noisy"):
        return Finding(subject, UNMEASURED, f"{figure}, but in {noisy} of "
                                            f"{row.get('rounds_ok') or noisy} rounds the "
                                            f"zero-job control moved by a quarter of it or "
                                            f"more: it cannot decide")
    if shaky := flagged_rounds(row, "unstable"):
        figure += f" (unstable in {shaky} of {row.get('rounds_ok') or shaky} rounds: {UNSTABLE})"
    return Finding(subject, HOLDS if holds else FAILS, figure)


def lower_bound_decides(op: str, holds: bool) -> bool:
    """Whether a verdict on a figure that is only a lower bound of the truth stands: the
    truth is at least as high, so 'at least' holding and 'at most' failing stand."""
    return (op in (">", ">=") and holds) or (op in ("<", "<=") and not holds)


def judge_rows(claim: dict[str, Any], rows: pd.DataFrame) -> Finding:
    """All aggregates of a group must pass; the figure is the first that fails (or the first)."""
    findings = [judge_row(claim, row) for _, row in rows.iterrows()]
    for verdict in (FAILS, HOLDS):
        chosen = [f for f in findings if f.verdict == verdict]
        if chosen:
            return chosen[0]
    return findings[0]


def describe_rule(claim: dict[str, Any]) -> str:
    if "evaluator" in claim:
        args = {k: " or ".join(map(str, v)) if isinstance(v, list) else v
                for k, v in (claim.get("args") or {}).items()}
        return EVALUATORS[claim["evaluator"]][1].format(**args)
    test = claim["test"]
    bound = (f"between {test['value'][0]:,} and {test['value'][1]:,}"
             if test["op"] == "between" else f"{test['op']} {test['value']:,}")
    stat = claim.get("stat", "median")
    over = (f"{stat} over rounds" if stat != "median" or not PERCENTILE.search(claim["metric"])
            else "of all rounds' jobs together: their histograms merged")
    parts = [f"holds if {claim['metric']} ({over}) {bound}"]
    if claim.get("where"):
        parts.append("where " + ", ".join(f"{k} = {v}" for k, v in claim["where"].items()))
    if claim.get("pick"):
        pick = claim["pick"]
        parts.append(f"at the {'smallest' if pick['how'] == 'min' else 'largest'} "
                     f"{pick['param']}" if pick["how"] != "nearest" else
                     f"at the {pick['param']} nearest {pick['target']}")
    per = claim.get("per") or []
    parts.append(f"judged per {' and '.join(per)}" if per else "judged over all backends")
    if claim.get("note"):
        parts.append(str(claim["note"]))
    return "; ".join(parts)


def evaluate(claim: dict[str, Any], data: RunData) -> ClaimResult:
    result = ClaimResult(claim["id"], claim["claim"], describe_rule(claim), UNMEASURED)
    frame = select(data, claim)
    per = claim.get("per") or []
    if frame.empty:
        return result
    keys = (pd.Series(["all backends"] * len(frame), index=frame.index) if not per else
            pd.concat([group_column(frame, p) for p in per], axis=1).agg(" / ".join, axis=1))
    for subject in dict.fromkeys(keys):
        rows = frame[keys == subject]
        if "evaluator" in claim:
            found = EVALUATORS[claim["evaluator"]][0](rows, data, claim.get("args") or {})
            if found is None:
                continue
            finding = Finding(subject, *found)
        else:
            finding = judge_rows(claim, pick_row(rows, claim.get("pick")))
            finding.subject = subject
        result.findings.append(finding)
    result.verdict = overall(result.findings)
    return result


def overall(findings: list[Finding]) -> str:
    verdicts = [f.verdict for f in findings if f.verdict != UNMEASURED]
    if not verdicts:
        return UNMEASURED
    holding = verdicts.count(HOLDS)
    if holding == len(verdicts):
        return HOLDS
    if holding == 0:
        return FAILS
    return f"holds for {holding} of {len(verdicts)}"


# -- named evaluators --------------------------------------------------------------------
Evaluator = Callable[[pd.DataFrame, RunData, dict[str, Any]], tuple[str, str] | None]


def persistence_off_loses_on_keeps(rows: pd.DataFrame, _data: RunData, args: dict[str, Any]
                                   ) -> tuple[str, str] | None:
    """Broker kill: the 'off' setting loses jobs (median > 0) and every 'on' one loses none."""
    off, on, missing = [], [], []
    for _, row in rows.iterrows():
        setting = str(param(row, "persistence"))
        is_off = setting in args["off"]
        if not is_off and not setting.startswith(args["on_prefix"]):
            continue
        if row["status"] != "ok" or value(row, "lost") is None:
            missing.append(f"{setting} {row['status']}: {row['reason'] or 'no lost count'}")
            continue
        lost = value(row, "lost", "median" if is_off else "max") or 0.0
        (off if is_off else on).append((setting, lost))
    if not off or not on:
        need = "persistence off" if not off else f"{args['on_prefix']} persistence"
        return UNMEASURED, f"no {need} result" + (f" ({'; '.join(missing)})" if missing else "")
    holds = all(lost > 0 for _, lost in off) and all(lost == 0 for _, lost in on)
    figure = "; ".join([f"{s}: {fmt_num(lost)} lost" for s, lost in off + on] + missing)
    return (HOLDS if holds else FAILS), figure


def share_of_ceiling(rows: pd.DataFrame, data: RunData, args: dict[str, Any]
                     ) -> tuple[str, str] | None:
    """Library jobs/s at a duration over its raw broker ceiling's; None if it has none."""
    backend = rows["backend"].iloc[0]
    ceiling = BACKENDS[backend].ceiling if backend in BACKENDS else None
    if not ceiling:
        return None
    frame = data.scenario("throughput")
    at = frame[frame["params.duration_ms"] == args["duration_ms"]]
    mine, raw = at[at["backend"] == backend], at[at["backend"] == ceiling]
    for name, part in ((backend, mine), (ceiling, raw)):
        if part.empty:
            return UNMEASURED, f"{name} not run at {args['duration_ms']} ms"
        if part["status"].iloc[0] != "ok":
            return UNMEASURED, f"{name} {part['status'].iloc[0]}: {part['reason'].iloc[0]}"
    lib, top = value(mine.iloc[0], "jobs_per_s"), value(raw.iloc[0], "jobs_per_s")
    if not lib or not top:
        return UNMEASURED, "no jobs_per_s in results"
    share = lib / top
    figure = (f"{fmt_num(lib)} of {fmt_num(top)} jobs/s ({ceiling}) at {args['duration_ms']} ms "
              f"jobs = {fmt_share(share)}")
    holds = share >= args["min_share"]
    # a dry library's share is a lower bound of the truth, a dry ceiling's an upper one
    for name, part, stands in ((backend, mine, holds), (ceiling, raw, not holds)):
        if flagged_rounds(part.iloc[0], "producer_bound") and not stands:
            return UNMEASURED, (f"{figure}; {name}'s queue ran dry inside the window, so "
                                f"its figure is a lower bound and the share cannot decide")
    shaky = [name for name, part in ((backend, mine), (ceiling, raw))
             if flagged_rounds(part.iloc[0], "unstable")]
    if shaky:
        figure += f"; unstable: {' and '.join(shaky)} ({UNSTABLE})"
    return (HOLDS if holds else FAILS), figure


def rises_with_workers(rows: pd.DataFrame, data: RunData, args: dict[str, Any]
                       ) -> tuple[str, str] | None:
    """Scaling sweep: jobs/s rise by min_gain at every step up in slots, to the largest."""
    ok = rows[(rows["status"] == "ok") & rows["jobs_per_s"].notna()] \
        if "jobs_per_s" in rows else rows.iloc[0:0]
    if len(ok) < 2:
        return UNMEASURED, f"{counted(len(ok), 'slot count')} measured; the sweep needs two or more"
    ok = with_linear_efficiency(ok).sort_values("params.slots")
    points = [(float(s), float(r)) for s, r in zip(ok["params.slots"], ok["jobs_per_s"],
                                                    strict=True)]
    reached = rises_up_to(points, args["min_gain"])
    shaky = [f"{float(row['params.slots']):g}" for _, row in ok.iterrows()
             if flagged_rounds(row, "unstable")]
    top = ok.iloc[-1]
    cpus = data.run.get("cpu_count")
    figure = (f"jobs/s rise up to {reached:g} slots: {fmt_num(points[0][1])} at "
              f"{points[0][0]:g} -> {fmt_num(max(r for _, r in points))} at best; "
              f"{fmt_num(top['jobs_per_s'])} at {points[-1][0]:g} slots = "
              f"{top['linear_efficiency']:.0%} of linear scaling"
              + (f" (this machine: {cpus} CPUs)" if cpus else "")
              + (f"; unstable at {', '.join(shaky)} slots ({UNSTABLE})" if shaky else ""))
    return (HOLDS if reached == points[-1][0] else FAILS), figure


EVALUATORS: dict[str, tuple[Evaluator, str]] = {
    "persistence_off_loses_on_keeps": (
        persistence_off_loses_on_keeps,
        "holds if, after kill -9 of the broker, persistence '{off}' loses jobs (median lost > 0) "
        "and every '{on_prefix}*' setting loses none (lost = 0 in every round); judged per "
        "backend"),
    "share_of_ceiling": (
        share_of_ceiling,
        "holds if a library backend reaches at least {min_share:.0%} of the jobs/s of the raw "
        "client on the same broker at {duration_ms} ms jobs; judged per library backend"),
    "rises_with_workers": (
        rises_with_workers,
        "holds if, in the scaling sweep at {duration_ms} ms jobs, every step up in slots "
        "raises jobs/s by at least {min_gain:.0%}, up to the largest slot count run; the "
        "figure says up to how many slots it rose here and the share of linear scaling from "
        "the smallest count at the largest; judged per backend"),
}


def evaluate_all(data: RunData, claims: list[dict[str, Any]] | None = None
                 ) -> list[ClaimResult]:
    return [evaluate(claim, data) for claim in (claims if claims is not None else load_claims())]
