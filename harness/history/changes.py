"""Where compare calls a change between consecutive history entries: the same gate,
thresholds and Benjamini-Hochberg correction as `python -m harness compare OLDER NEWER`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.results import ResultsError
from harness.compare.fingerprint import check
from harness.compare.judge import NO_CHANGE, compare
from harness.compare.table import Key


@dataclass(frozen=True)
class Called:
    """A gated row whose verdict changed at entry `index` (against index - 1)."""

    index: int
    key: Key
    metric: str  # as judged: jobs_per_s on its basis
    basis: str
    verdict: str  # slower or faster (better or worse for a metric that is no speed)
    ratio: float


def called_changes(entries: list[dict[str, Any]]) -> tuple[list[Called], list[str]]:
    """(called changes, one line per pair that could not be compared)."""
    called, notes = [], []
    for index in range(1, len(entries)):
        older, newer = entries[index - 1], entries[index]
        try:
            check(older, newer, force=False, offer_force=False)
            comparison = compare(older, newer, allow_missing=True)
        except ResultsError as exc:
            notes.append(f"{older['commit'][:10]} -> {newer['commit'][:10]}: {exc}")
            continue
        called += [Called(index, r.key, r.metric, r.basis, r.verdict, r.ratio)
                   for r in comparison.rows if r.gated and r.verdict != NO_CHANGE]
    return called, notes
