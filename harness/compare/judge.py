"""Judging: one row per (case, metric) both runs have; a change is called when the
medians differ by the threshold and a one-sided Mann-Whitney U test over the rounds is
significant (see the package docstring)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.results import ResultsError
from harness.compare.metrics import default_metrics, direction_of, selected
from harness.compare.table import (
    CEILINGS,
    NORMALISABLE,
    Key,
    Table,
    ceiling_of,
    label,
    normalised,
    per_round,
)

ALPHA = 0.05
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
    ratio: float = 1.0
    p: float | None = None  # None: too few rounds for the test, threshold only
    verdict: str = NO_CHANGE

    @property
    def name(self) -> str:
        return f"{label(self.key)} {self.metric}"

    @property
    def regressed(self) -> bool:
        return self.gated and self.verdict == "slower"


def min_p(n: int, m: int) -> float:
    """Smallest one-sided p an exact U test can give for n and m rounds: 1/C(n+m, n)."""
    return 1.0 / math.comb(n + m, n) if n and m else 1.0


def judge(row: Row, threshold: float, alpha: float) -> None:
    """Threshold on the median ratio, then significance in the direction of the change."""
    mb, mc = statistics.median(row.base), statistics.median(row.cur)
    row.ratio = mc / mb if mb else (1.0 if mc == mb else math.inf)
    up = mc > mb
    big = mc != mb and abs(row.ratio - 1) >= threshold
    significant = True
    if min_p(len(row.base), len(row.cur)) <= alpha * (1 + 1e-9):
        from scipy.stats import mannwhitneyu  # here: scipy takes 1.5 s to import

        p = mannwhitneyu(row.cur, row.base, alternative="greater" if up else "less").pvalue
        row.p = float(p)
        significant = not math.isnan(row.p) and row.p <= alpha * (1 + 1e-9)
    if not (big and significant):
        row.verdict = NO_CHANGE
        return
    direction = direction_of(row.metric)
    if direction == 0:
        row.verdict = "higher" if up else "lower"
    else:
        row.verdict = "faster" if up == (direction > 0) else "slower"


def build_row(bt: Table, ct: Table, key: Key, metric: str, patterns: Sequence[str],
              absolute: bool) -> Row:
    base, cur = list(bt[key][metric].values()), list(ct[key][metric].values())
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
    return Row(key, metric, basis, base, cur, gated, note)


def compare(baseline: dict[str, Any], current: dict[str, Any], *,
            metrics: Sequence[str] | None = None, threshold: float = 0.10,
            alpha: float = ALPHA, absolute: bool = False,
            names: tuple[str, str] = ("baseline", "current")) -> list[Row]:
    """One judged row per (cell group, metric) both runs have; gated rows first, then
    rows with a called change. `metrics` gate (globs; default: the declared ones)."""
    metrics = default_metrics() if metrics is None else metrics
    bt, ct = per_round(baseline, names[0]), per_round(current, names[1])
    rows = [build_row(bt, ct, key, metric, metrics, absolute)
            for key in sorted(bt.keys() & ct.keys())
            for metric in sorted(bt[key].keys() & ct[key].keys())]
    if not rows:
        raise ResultsError(f"{names[0]} and {names[1]} have no ok (scenario, backend, "
                           "profile, params) with a metric in common")
    if not any(selected(r.metric, metrics) for r in rows):
        shared = sorted({r.metric for r in rows})
        raise ResultsError(f"no metric matching {','.join(metrics)} in both runs; shared: "
                           f"{', '.join(shared[:12])}{' ...' if len(shared) > 12 else ''}")
    for row in rows:
        judge(row, threshold, alpha)
    return sorted(rows, key=lambda r: (not r.gated, r.verdict == NO_CHANGE))
