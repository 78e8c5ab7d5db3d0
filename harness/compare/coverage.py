"""Which cases can be judged, and which the gate must not let pass silently.

A case (scenario, backend, profile, params) that the baseline measured with a metric
that gates (or with its yardstick, a ceiling) must be there in the current run, ok in
at least one round, and not unstable: its counted window not shorter than asked in
every round when the baseline's never was. Otherwise it is a problem: the gate fails
and names it, unless --allow-missing. Cases the gate cannot judge for a harmless
reason (new in the current run, failed in the baseline) are listed as skipped.

The other half of the `unstable` flag, a per-second CV above 10%, is only noted on the
row: a quick window holds two per-second counts, and in the A/A calibration runs that
CV ranged from 0.01 to 0.88 for the same cell (docs/ci.md), so it would fail the gate by
chance. So is a producer-bound round (the queue ran dry inside the window): its figure
is a lower bound for the backend, and it still changes when the harness or the
library's enqueue path does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from adapters import CEILINGS
from core.words import counted
from harness.compare.metrics import direction_of, selected
from harness.compare.table import CaseState, Key, Table, label


@dataclass(frozen=True)
class Skip:
    """A case that was not judged, and why (or, with `metrics`, only those metrics of
    it: the case's other rows are judged)."""

    key: Key
    reason: str
    fails: bool  # a problem: fails the gate unless --allow-missing
    metrics: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return label(self.key)


def gating(table: Table, key: Key, patterns: Sequence[str]) -> list[str]:
    """The metrics of this case that gate, as `table` has them."""
    return [m for m in table.get(key, {}) if selected(m, patterns) and direction_of(m)]


def why_not(base: CaseState, cur: CaseState | None) -> str | None:
    """Why a watched case cannot be judged in the current run, or None."""
    if cur is None:
        return "missing in current"
    if not cur.ok:
        kinds = "/".join(sorted(set(cur.statuses)))
        reason = f": {cur.reasons[0]}" if cur.reasons else ""
        return f"{kinds} in current{reason}"
    if cur.short == cur.ok and not base.short:
        return (f"unstable in current: window shorter than asked in {cur.short} of "
                f"{counted(cur.ok, 'ok round')}")
    return None


def lost_metrics(bt: Table, ct: Table, key: Key, patterns: Sequence[str],
                 written: set[str]) -> list[Skip]:
    """The gated metrics the baseline has for a library's case that its ok current
    rounds lack: a problem where the current run's harness writes the metric (null, NaN,
    not a number, or absent in this case: a cell that ended ok without its figure), a
    note where it writes it nowhere (a run of a harness from before the metric). The
    ceilings' figures are yardsticks, as in the rows."""
    if key[1] in CEILINGS:
        return []
    out = []
    for metric in sorted(m for m in gating(bt, key, patterns) if m not in ct.get(key, {})):
        if metric in written:
            out.append(Skip(key, f"{metric} not measured in current's ok rounds", True,
                            (metric,)))
        else:
            out.append(Skip(key, f"{metric} not written by current's harness", False,
                            (metric,)))
    return out


def unmeasured_in_both(base: CaseState, cur: CaseState, bt: Table, ct: Table, key: Key,
                       patterns: Sequence[str]) -> list[Skip]:
    """The gated metrics this case's ok cells write in both runs but never as a number
    (null in every round, e.g. a CPU figure that could not be read): nothing to judge,
    and said so rather than left out silently."""
    names = {m for m in base.written & cur.written if selected(m, patterns) and direction_of(m)}
    lacking = names - set(bt.get(key, {})) - set(ct.get(key, {}))
    return [Skip(key, f"{metric} not measured in either run (null in every ok round)", False,
                 (metric,)) for metric in sorted(lacking)]


def coverage(bstates: dict[Key, CaseState], cstates: dict[Key, CaseState], bt: Table,
             ct: Table, patterns: Sequence[str], written: set[str]) -> list[Skip]:
    """Every case (or metric of a case) that will not be judged, problems first;
    `written`: every metric name the current run has (table.metric_names)."""
    out = []
    for key in sorted(bstates.keys() | cstates.keys()):
        base, cur = bstates.get(key), cstates.get(key)
        watched = bool(gating(bt, key, patterns))
        if base is None and cur is not None and not cur.ok:
            reason = cur.reasons[0] if cur.reasons else "no reason given"
            out.append(Skip(key, f"{cur.statuses[0]} in current, not in baseline: {reason}",
                            False))
        elif base is None:
            out.append(Skip(key, "new in current: nothing to compare with", False))
        elif not base.ok:
            out.append(Skip(key, "not ok in baseline", False))
        elif watched and (reason := why_not(base, cur)):
            out.append(Skip(key, reason, True))
        elif cur is None:
            out.append(Skip(key, "missing in current (a case with no gated metric)", False))
        elif not cur.ok:
            out.append(Skip(key, "no ok round in current (a case with no gated metric)", False))
        elif watched:
            out += lost_metrics(bt, ct, key, patterns, written)
            out += unmeasured_in_both(base, cur, bt, ct, key, patterns)
        elif gated := gating(ct, key, patterns):  # ok in the baseline, but without them
            out.append(Skip(key, f"{', '.join(sorted(gated))} not measured in baseline's ok "
                                 "rounds: nothing to compare with", False, tuple(gated)))
        else:
            out += unmeasured_in_both(base, cur, bt, ct, key, patterns)
    return sorted(out, key=lambda s: not s.fails)


def round_note(cur: CaseState) -> str:
    """A note for a judged case whose rounds were not all ok or stable."""
    notes = []
    if cur.ok < len(cur.statuses):
        notes.append(f"{len(cur.statuses) - cur.ok} of {len(cur.statuses)} current rounds "
                     "not ok")
    if cur.unstable:
        notes.append(f"unstable in {cur.unstable} of {cur.ok} current rounds")
    if cur.producer_bound:
        notes.append(f"producer-bound in {cur.producer_bound} of {cur.ok} current rounds "
                     "(the queue ran dry: a lower bound)")
    return "; ".join(notes)
