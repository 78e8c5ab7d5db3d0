"""Judging: one row per (case, metric) both runs have. A change is called when the
medians differ by the threshold and a one-sided Welch t-test on the logs of the
rounds is significant, with Holm's correction across the gated rows (see the package
docstring and docs/ci.md)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.results import ResultsError
from harness.compare.coverage import Skip, coverage, round_note
from harness.compare.metrics import default_metrics, direction_of, selected
from harness.compare.table import (
    CEILINGS,
    NORMALISABLE,
    CaseState,
    Key,
    Table,
    case_states,
    ceiling_of,
    label,
    normalised,
    per_round,
)

ALPHA = 0.05
THRESHOLD = 0.10
NO_CHANGE = "no significant change"


@dataclass
class Row:
    key: Key
    metric: str
    basis: str  # "absolute" or "/<ceiling>"
    base: list[float]
    cur: list[float]
    gated: bool
    note: str = ""
    ratio: float = 1.0  # median current / median baseline, on the basis
    abs_ratio: float = 1.0  # the same on the absolute figures
    p: float | None = None  # None: too few rounds for the test, threshold only
    p_limit: float = ALPHA  # what p had to reach (Holm: alpha / rows still in the family)
    verdict: str = NO_CHANGE

    @property
    def name(self) -> str:
        return f"{label(self.key)} {self.metric}"

    @property
    def regressed(self) -> bool:
        return self.gated and self.verdict == "slower"


@dataclass
class Comparison:
    """Judged rows (gated first, then rows with a called change) and unjudged cases."""

    rows: list[Row]
    skipped: list[Skip] = field(default_factory=list)
    allow_missing: bool = False

    @property
    def regressed(self) -> list[Row]:
        return [r for r in self.rows if r.regressed]

    @property
    def problems(self) -> list[Skip]:
        """Watched cases that failed, went missing or turned unstable in the current run."""
        return [s for s in self.skipped if s.fails]

    @property
    def failed(self) -> bool:
        return bool(self.regressed) or bool(self.problems and not self.allow_missing)


def median_ratio(base: Sequence[float], cur: Sequence[float]) -> float:
    mb, mc = statistics.median(base), statistics.median(cur)
    return mc / mb if mb else (1.0 if mc == mb else math.inf)


def p_value(base: Sequence[float], cur: Sequence[float], up: bool) -> float | None:
    """One-sided Welch t-test that the current rounds moved `up` (or down); on logs when
    every value is positive (a throughput change is a ratio). None below 2+2 rounds."""
    if len(base) < 2 or len(cur) < 2:
        return None
    if min(*base, *cur) > 0:
        # rounded: a ratio of two equal floats is 1 within 1e-16, not a spread to test
        base, cur = [round(math.log(v), 12) for v in base], [round(math.log(v), 12) for v in cur]
    shift = statistics.mean(cur) - statistics.mean(base)
    terms = [statistics.variance(v) / len(v) for v in (base, cur)]
    if sum(terms) == 0:
        return 0.0 if (shift > 0) == up and shift != 0 else 1.0
    from scipy.stats import t  # here: scipy takes 1.5 s to import

    freedom = sum(terms) ** 2 / sum(x * x / (len(v) - 1)
                                    for x, v in zip(terms, (base, cur), strict=True))
    score = shift / math.sqrt(sum(terms))
    return float(t.sf(score if up else -score, freedom))


def judge(row: Row, threshold: float) -> None:
    """Threshold on the median ratio (set with row.p beforehand), then the test in the
    direction of the change against row.p_limit (Holm's, for gated rows)."""
    up = row.ratio > 1
    big = row.ratio != 1 and abs(row.ratio - 1) >= threshold
    significant = row.p is None or row.p <= row.p_limit * (1 + 1e-9)
    if not (big and significant):
        row.verdict = NO_CHANGE
        return
    direction = direction_of(row.metric)
    if direction == 0:
        row.verdict = "higher" if up else "lower"
    else:
        row.verdict = "faster" if up == (direction > 0) else "slower"


def holm(rows: Sequence[Row], alpha: float) -> None:
    """Holm's step-down limits: the k-th smallest p (from 0) must reach alpha / (m - k),
    and once one fails every larger p fails too (its limit is then 0)."""
    tested = sorted((r for r in rows if r.p is not None), key=lambda r: r.p or 0.0)
    m, stopped = len(tested), False
    for k, row in enumerate(tested):
        row.p_limit = 0.0 if stopped else alpha / (m - k)
        stopped = stopped or (row.p or 0.0) > row.p_limit * (1 + 1e-9)


def build_row(bt: Table, ct: Table, key: Key, metric: str, patterns: Sequence[str],
              absolute: bool) -> Row:
    base, cur = list(bt[key][metric].values()), list(ct[key][metric].values())
    abs_ratio = median_ratio(base, cur)
    basis, note = "absolute", ""
    is_ceiling = key[1] in CEILINGS
    ceiling = ceiling_of(key[1])
    if metric in NORMALISABLE and not absolute:
        if ceiling:
            nb, nc = normalised(bt, key, metric), normalised(ct, key, metric)
            if nb and nc:
                base, cur, basis = nb[0], nc[0], f"/{ceiling}"
                if not (nb[1] and nc[1]):
                    note = f"{ceiling} rounds differ: over its median"
            else:
                missing = " and ".join(s for s, n in (("baseline", nb), ("current", nc))
                                       if not n)
                note = f"no {ceiling} {metric} in {missing}"
        elif is_ceiling:
            note = "ceiling (yardstick): gates only with --absolute"
    chosen = selected(metric, patterns)
    direction = direction_of(metric)
    if chosen and direction == 0:
        note = "direction unknown: not gated"
    gated = (chosen and direction != 0
             and not (is_ceiling and metric in NORMALISABLE and not absolute))
    return Row(key, metric, basis, base, cur, gated, note, abs_ratio=abs_ratio)


def add_note(row: Row, note: str) -> None:
    if note:
        row.note = f"{row.note}; {note}" if row.note else note


def judged_rows(bt: Table, ct: Table, keys: Sequence[Key], states: dict[Key, CaseState],
                metrics: Sequence[str], absolute: bool) -> list[Row]:
    rows = []
    for key in keys:
        for metric in sorted(bt[key].keys() & ct[key].keys()):
            row = build_row(bt, ct, key, metric, metrics, absolute)
            add_note(row, round_note(states[key]))
            rows.append(row)
    return rows


def compare(baseline: dict[str, Any], current: dict[str, Any], *,
            metrics: Sequence[str] | None = None, threshold: float = THRESHOLD,
            alpha: float = ALPHA, absolute: bool = False, allow_missing: bool = False,
            names: tuple[str, str] = ("baseline", "current")) -> Comparison:
    """Judge every (case, metric) both runs have ok; `metrics` gate (globs; default: the
    declared ones). Cases the baseline watched and the current run lost are problems."""
    metrics = default_metrics() if metrics is None else metrics
    bt, ct = per_round(baseline, names[0]), per_round(current, names[1])
    bstates, cstates = case_states(baseline, names[0]), case_states(current, names[1])
    skipped = coverage(bstates, cstates, bt, metrics)
    unjudged = {s.key for s in skipped}
    keys = sorted((bt.keys() & ct.keys()) - unjudged)
    rows = judged_rows(bt, ct, keys, cstates, metrics, absolute)
    if not rows and not (bstates.keys() & cstates.keys()):
        raise ResultsError(f"{names[0]} and {names[1]} have no (scenario, backend, "
                           "profile, params) in common")
    if rows and not any(selected(r.metric, metrics) for r in rows):
        shared = sorted({r.metric for r in rows})
        raise ResultsError(f"no metric matching {','.join(metrics)} in both runs; shared: "
                           f"{', '.join(shared[:12])}{' ...' if len(shared) > 12 else ''}")
    for row in rows:
        row.ratio = median_ratio(row.base, row.cur)
        row.p = p_value(row.base, row.cur, row.ratio > 1)
        row.p_limit = alpha
    holm([r for r in rows if r.gated], alpha)
    for row in rows:
        judge(row, threshold)
    rows.sort(key=lambda r: (not r.gated, r.verdict == NO_CHANGE))
    return Comparison(rows, skipped, allow_missing)
