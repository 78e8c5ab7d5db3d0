"""Judging: one row per (case, metric) both runs have. A change is called when the
medians differ by the threshold and a one-sided t-test on the logs of the rounds is
significant, with Benjamini-Hochberg's correction across the gated rows: Welch's on the two runs'
rounds alone, or, with a noise model learned from earlier runs (noise.py), one whose
variance pools theirs (see the package docstring and docs/ci.md)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from adapters import CEILINGS
from core.results import ResultsError
from harness.compare.coverage import Skip, coverage, round_note
from harness.compare.metrics import default_metrics, direction_of, selected, unit_of
from harness.compare.noise import Noise, NoiseModel, RowKey, positive_logs
from harness.compare.table import (
    AT_MACHINE_SPEED,
    MACHINE_METRICS,
    NORMALISABLE,
    PER_LOOP,
    CaseState,
    Key,
    Table,
    case_states,
    ceiling_of,
    label,
    metric_names,
    normalised,
    per_loop,
    per_round,
    probe_of,
)

ALPHA = 0.05
THRESHOLD = 0.10
NO_CHANGE = "no significant change"
FASTER, SLOWER, BETTER, WORSE = "faster", "slower", "better", "worse"
WORSENED = (SLOWER, WORSE)  # the verdicts that fail the gate on a gated row
IMPROVED = (FASTER, BETTER)
TIME_UNITS = ("us", "ms", "s", "loops")  # with rates (x/s, x/loop): faster or slower
DETECT = 0.25  # the drop compare says it could or could not see, per gated row
MAX_ROUNDS = 50  # rounds per side it looks for when a row cannot see DETECT
TEST_ROUNDS = 2  # rounds a side Welch's test needs; below, a verdict is the threshold's alone


@dataclass
class Row:
    key: Key
    metric: str
    basis: str  # "absolute", "per loop" (harness/speed) or "/<ceiling>"
    base: list[float]
    cur: list[float]
    gated: bool
    note: str = ""
    ratio: float = 1.0  # median current / median baseline, on the basis
    abs_ratio: float = 1.0  # the same on the absolute figures
    p: float | None = None  # None: too few rounds for the test, threshold only
    p_limit: float = ALPHA  # what p had to reach (gated rows: benjamini_hochberg's limit)
    verdict: str = NO_CHANGE
    # the smallest worsening this row could call, as the drop of a rate it equals (a
    # lower-is-better row's increase x is the drop 1 - 1/(1 + x)): see detectable_drop
    sees: float | None = None
    rounds_needed: int | None = None  # per side, to see DETECT at this noise (None: > MAX)
    at_zero: bool = False  # a gated row with a round at 0 or below: no log test

    @property
    def name(self) -> str:
        return f"{label(self.key)} {self.metric}"

    @property
    def regressed(self) -> bool:
        return self.gated and self.verdict in WORSENED


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
    def blind(self) -> list[Row]:
        """Gated rows whose noise hides a DETECT drop (they could not call one)."""
        return [r for r in self.rows if r.gated and r.sees is not None and r.sees > DETECT]

    @property
    def with_their_ceiling(self) -> list[Row]:
        """Gated library rows called slower whose ceiling's jobs/s in the same case was called
        slower too: the machine may have changed in a way the speed probe does not
        measure (in results/reference/ci-calibration-cpu-time, the one A/A pair the
        gate failed had celery-rabbitmq's noop rate at -40% per loop and amqp-raw's at
        -42%, with the probe loop 5-10% slower)."""
        slower_ceilings = {r.key for r in self.rows if r.key[1] in CEILINGS
                           and r.metric == "jobs_per_s" and r.verdict == SLOWER}
        return [r for r in self.regressed if r.key[1] not in CEILINGS
                and (r.key[0], ceiling_of(r.key[1]), r.key[2], r.key[3]) in slower_ceilings]

    @property
    def failed(self) -> bool:
        return bool(self.regressed) or bool(self.problems and not self.allow_missing)


def median_ratio(base: Sequence[float], cur: Sequence[float]) -> float:
    mb, mc = statistics.median(base), statistics.median(cur)
    return mc / mb if mb else (1.0 if mc == mb else math.inf)


def p_value(base: Sequence[float], cur: Sequence[float], up: bool,
            noise: Noise | None = None) -> float | None:
    """One-sided t-test that the current rounds moved `up` (or down); on logs when every
    value is positive (a throughput change is a ratio). Welch's on these rounds, or with
    `noise` its learned variance pooled with theirs. None below 2+2 rounds (Welch) or 1+1."""
    logs = (positive_logs(base), positive_logs(cur))
    if noise is not None and logs[0] and logs[1]:
        pooled = noise.with_rounds(*logs)
        sizes = (len(base), len(cur))
        return _t_tail(statistics.fmean(logs[1]) - statistics.fmean(logs[0]),
                       pooled.standard_error(sizes), pooled.freedom_for(sizes), up)
    if len(base) < TEST_ROUNDS or len(cur) < TEST_ROUNDS:
        return None
    if logs[0] and logs[1]:
        # rounded: a ratio of two equal floats is 1 within 1e-16, not a spread to test
        base, cur = [round(v, 12) for v in logs[0]], [round(v, 12) for v in logs[1]]
    shift = statistics.mean(cur) - statistics.mean(base)
    terms = [statistics.variance(v) / len(v) for v in (base, cur)]
    freedom = (sum(terms) ** 2 / sum(x * x / (len(v) - 1)
                                     for x, v in zip(terms, (base, cur), strict=True))
               if sum(terms) else 1.0)
    return _t_tail(shift, math.sqrt(sum(terms)), freedom, up)


def _t_tail(shift: float, error: float, freedom: float, up: bool) -> float:
    if error == 0:
        return 0.0 if (shift > 0) == up and shift != 0 else 1.0
    from scipy.stats import t  # here: scipy takes 1.5 s to import

    score = shift / error
    return float(t.sf(score if up else -score, freedom))


def log_variances(base: Sequence[float], cur: Sequence[float]) -> tuple[float, float] | None:
    """The sample variances of the logs of both sides; None below 2+2 positive rounds."""
    if len(base) < 2 or len(cur) < 2 or min(*base, *cur) <= 0:
        return None
    return (statistics.variance([math.log(v) for v in base]),
            statistics.variance([math.log(v) for v in cur]))


def welch_reach(variances: tuple[float, float], sizes: tuple[int, int], limit: float) -> float:
    """The shift of the log means at which a one-sided Welch test reaches p = `limit`,
    for samples of these sizes and variances."""
    from scipy.stats import t

    terms = [v / n for v, n in zip(variances, sizes, strict=True)]
    if sum(terms) == 0:
        return 0.0
    freedom = sum(terms) ** 2 / sum(x * x / (n - 1) for x, n in zip(terms, sizes, strict=True))
    return float(t.isf(limit, freedom)) * math.sqrt(sum(terms))


def pooled_reach(noise: Noise, sizes: tuple[int, int], limit: float) -> float:
    """The same shift for the test with a learned noise (its variance and freedom)."""
    from scipy.stats import t

    return float(t.isf(limit, noise.freedom_for(sizes))) * noise.standard_error(sizes)


def _reach(base: Sequence[float], cur: Sequence[float], limit: float, noise: Noise | None,
           sizes: tuple[int, int]) -> float | None:
    """The log shift the row's test reaches `limit` at with `sizes` rounds a side (the
    learned noise grows by the extra rounds' freedom); None without a spread."""
    logs = (positive_logs(base), positive_logs(cur))
    if limit <= 0 or not (logs[0] and logs[1]):
        return None
    if noise is not None:  # more rounds add freedom; the variance stays what it is
        pooled = noise.with_rounds(*logs)
        freedom = pooled.freedom + sum(sizes) - len(base) - len(cur)
        grown = Noise(pooled.within * freedom, freedom, pooled.runs, pooled.between)
        return pooled_reach(grown, sizes, limit)
    variances = log_variances(base, cur)
    return None if variances is None else welch_reach(variances, sizes, limit)


def detectable_drop(base: Sequence[float], cur: Sequence[float], limit: float,
                    threshold: float, noise: Noise | None = None,
                    lower_is_better: bool = False) -> float | None:
    """The smallest drop the test at `limit` could call with these rounds' own spread
    (or the learned one), and at least the threshold: how blind the row is. None
    without a spread. For a lower-is-better row the threshold bounds an increase, so
    its floor is the drop that increase equals."""
    shift = _reach(base, cur, limit, noise, (len(base), len(cur)))
    floor = 1 - 1 / (1 + threshold) if lower_is_better else threshold
    return None if shift is None else max(floor, 1 - math.exp(-shift))


def rounds_needed(base: Sequence[float], cur: Sequence[float], limit: float,
                  drop: float = DETECT, noise: Noise | None = None) -> int | None:
    """Rounds per side at which a `drop` would reach `limit` at the noise of these rounds
    (each side's variance as measured, or the learned one); None if more than MAX_ROUNDS."""
    wanted = -math.log(1 - drop)
    for n in range(2, MAX_ROUNDS + 1):
        shift = _reach(base, cur, limit, noise, (n, n))
        if shift is None:
            return None
        if shift <= wanted:
            return n
    return None


def judge(row: Row, threshold: float) -> None:
    """Threshold on the median ratio (set with row.p beforehand), then the test in the
    direction of the change against row.p_limit (benjamini_hochberg's, for gated rows)."""
    big = row.ratio != 1 and abs(row.ratio - 1) >= threshold
    significant = row.p is None or row.p <= row.p_limit * (1 + 1e-9)
    row.verdict = verdict_if_called(row) if big and significant else NO_CHANGE


def verdict_if_called(row: Row) -> str:
    """What `row` would be called if significant: which way its medians moved, in words
    that fit the metric (a rate or a time gets faster or slower; lost jobs or bytes get
    better or worse; a metric with no better way, higher or lower)."""
    up = row.ratio > 1
    direction = direction_of(row.metric)
    if direction == 0:
        return "higher" if up else "lower"
    improved = up == (direction > 0)
    unit = unit_of(row.metric)
    if unit in TIME_UNITS or unit.endswith(("/s", "/loop")):
        return FASTER if improved else SLOWER
    return BETTER if improved else WORSE


def benjamini_hochberg(rows: Sequence[Row], alpha: float) -> None:
    """Benjamini-Hochberg's step-up limit, per way a row can move (worse: slower or worse;
    better: faster or better):
    over the rows whose medians moved that way, sorted by their one-sided p, k* is the
    largest rank k (from 1) whose p reaches k alpha / m, m counting every tested row;
    each of those rows gets k* alpha / m (alpha / m when none reaches its rank's).

    Why not Holm's step-down (what compare used before): the gate fails when any row is
    called slower, so the false alarm that matters is a `slower` call when no row got
    slower, and there both keep its chance at alpha or below. When a change slows many
    rows at once (a harness-wide slowdown, a library on two brokers), Holm still asks
    the first of them for alpha / m, while this asks each for about alpha: more of the
    slowed rows are named. Rows that moved the other way (a speed-up) never loosen the
    limit of a `slower` call. What it gives up: when some rows really got slower, up to
    alpha of the rows it names slower may be unchanged ones (it bounds the false
    discovery rate, not the family-wise rate); the gate fails either way then."""
    tested = [r for r in rows if r.p is not None]
    m = max(1, len(tested))
    def way(row: Row) -> bool:  # would it be called a worsening?
        return verdict_if_called(row) in WORSENED

    for worse in {way(r) for r in tested}:
        moved = sorted(r.p or 0.0 for r in tested if way(r) == worse and r.ratio != 1)
        passing = [k for k, p in enumerate(moved, 1) if p <= k * alpha / m * (1 + 1e-9)]
        limit = max(passing, default=1) * alpha / m
        for row in tested:
            if way(row) == worse:
                row.p_limit = limit


def build_row(bt: Table, ct: Table, key: Key, metric: str, patterns: Sequence[str],
              absolute: bool, same_probe: bool = True) -> Row:
    """One row; `same_probe`: the two runs' speed meters measured alike (probe_of), so
    their rates per probe loop may be compared."""
    base, cur = list(bt[key][metric].values()), list(ct[key][metric].values())
    abs_ratio = median_ratio(base, cur)
    basis, note = "absolute", ""
    is_ceiling = key[1] in CEILINGS
    ceiling = ceiling_of(key[1])
    steady = (per_loop(bt, key, metric), per_loop(ct, key, metric))
    if steady[0] and steady[1] and not same_probe:
        steady, note = (None, None), "speed probes differ (loop or Python): not per loop"
    yardstick = metric in NORMALISABLE or metric in AT_MACHINE_SPEED  # gates on ceilings?
    if yardstick and not absolute:
        if steady[0] and steady[1]:  # the machine's speed taken out: every backend alike
            base, cur, basis = steady[0], steady[1], PER_LOOP
            if is_ceiling:
                note = "ceiling (yardstick): gates only with --absolute"
        elif ceiling and metric in NORMALISABLE:
            nb, nc = normalised(bt, key, metric), normalised(ct, key, metric)
            if nb and nc:
                base, cur, basis = nb[0], nc[0], f"/{ceiling}"
                if not (nb[1] and nc[1]):
                    note = f"{ceiling} rounds differ: over its median"
            else:
                missing = " and ".join(s for s, n in (("baseline", nb), ("current", nc))
                                       if not n)
                note = "; ".join(n for n in (note, f"no {ceiling} {metric} in {missing}") if n)
        elif is_ceiling:
            note = "ceiling (yardstick): gates only with --absolute"
    chosen = selected(metric, patterns)
    direction = direction_of(metric)
    if chosen and direction == 0:
        note = "direction unknown: not gated"
    gated = chosen and direction != 0 and not (is_ceiling and yardstick and not absolute)
    if gated and metric not in NORMALISABLE and yardstick and basis != PER_LOOP \
            and not absolute:
        # CPU per job has no ceiling basis, and raw microseconds move with the machine
        gated = False
        note = "; ".join(n for n in (note, "no per-loop basis in both runs: shown, not "
                                           "gated (--absolute gates it)") if n)
    return Row(key, metric, basis, base, cur, gated, note, abs_ratio=abs_ratio)


def add_note(row: Row, note: str) -> None:
    if note:
        row.note = f"{row.note}; {note}" if row.note else note


def judged_rows(bt: Table, ct: Table, keys: Sequence[Key], states: dict[Key, CaseState],
                metrics: Sequence[str], absolute: bool, same_probe: bool = True) -> list[Row]:
    rows = []
    for key in keys:
        for metric in sorted(bt[key].keys() & ct[key].keys() - set(MACHINE_METRICS)):
            row = build_row(bt, ct, key, metric, metrics, absolute, same_probe)
            add_note(row, round_note(states[key]))
            rows.append(row)
    return rows


def copies_judged_elsewhere(keys: Sequence[Key], base: dict[Key, CaseState],
                            cur: dict[Key, CaseState]) -> dict[Key, Key]:
    """Cases that are, in every ok round of both runs, the cell of another judged case,
    reused (the latency `max` and payload 64 B cells are the throughput noop cell):
    key -> that case. Judging one measurement under several names would count it
    several times in the multiple-comparison correction and in the verdicts. A case
    either run measured on its own is judged as usual."""
    judged = set(keys)

    def copy_of(state: CaseState) -> Key | None:
        return state.source if state.ok and state.reused == state.ok else None

    return {key: source for key in keys
            if (source := copy_of(cur[key])) is not None and source in judged
            and copy_of(base[key]) == source}


def compare(baseline: dict[str, Any], current: dict[str, Any], *,
            metrics: Sequence[str] | None = None, threshold: float = THRESHOLD,
            alpha: float = ALPHA, absolute: bool = False, allow_missing: bool = False,
            names: tuple[str, str] = ("baseline", "current"),
            noise: NoiseModel | None = None) -> Comparison:
    """Judge every (case, metric) both runs have ok; `metrics` gate (globs; default: the
    declared ones). Cases the baseline watched and the current run lost are problems.
    `noise` (noise.learn over earlier runs) replaces Welch's test where it has the row."""
    chosen = metrics is not None  # by the user: each pattern must gate something
    metrics = default_metrics() if metrics is None else metrics
    bt, ct = per_round(baseline, names[0]), per_round(current, names[1])
    bstates, cstates = case_states(baseline, names[0]), case_states(current, names[1])
    skipped = coverage(bstates, cstates, bt, ct, metrics, metric_names(current))
    unjudged = {s.key for s in skipped if not s.metrics}  # a lost metric: the rest is judged
    keys = sorted((bt.keys() & ct.keys()) - unjudged)
    copies = copies_judged_elsewhere(keys, bstates, cstates)
    skipped += [Skip(key, f"the same cell as {label(source)}, judged there", False)
                for key, source in copies.items()]
    keys = [key for key in keys if key not in copies]
    rows = judged_rows(bt, ct, keys, cstates, metrics, absolute,
                       same_probe=probe_of(baseline) == probe_of(current))
    if not rows and not (bstates.keys() & cstates.keys()):
        raise ResultsError(f"{names[0]} and {names[1]} have no (scenario, backend, "
                           "profile, params) in common")
    shared = sorted({r.metric for r in rows})
    listed = f"{', '.join(shared[:12])}{' ...' if len(shared) > 12 else ''}"
    unmatched = [p for p in metrics if not any(selected(m, [p]) for m in shared)]
    if rows and (len(unmatched) == len(metrics) or (chosen and unmatched)):
        raise ResultsError(f"no metric matching {','.join(unmatched)} in both runs; shared: "
                           f"{listed}")
    picked = sorted({m for m in shared if selected(m, metrics)})
    if chosen and picked and not any(direction_of(m) for m in picked):
        raise ResultsError(f"--metric {','.join(metrics)}: no better or worse way for "
                           f"{', '.join(picked)}, so nothing would be gated")
    model = noise or {}
    for row in rows:
        row.ratio = median_ratio(row.base, row.cur)
        if row.gated and min([*row.base, *row.cur]) <= 0:
            # no log test (a rate that fell to 0 would pass a test on raw values of
            # 2-3 rounds): the threshold alone judges it
            row.p, row.at_zero = None, True
            add_note(row, "a round at 0 or below: threshold only")
        else:
            row.p = p_value(row.base, row.cur, row.ratio > 1,
                            model.get((row.key, row.metric, row.basis)))
        row.p_limit = alpha
    gated = [r for r in rows if r.gated]
    benjamini_hochberg(gated, alpha)
    # a change in one row alone must reach alpha / m, as under Holm: what `sees` assumes
    first_limit = alpha / max(1, sum(r.p is not None for r in gated))
    for row in rows:
        judge(row, threshold)
        if row.gated:
            prior = model.get((row.key, row.metric, row.basis))
            row.sees = detectable_drop(row.base, row.cur, first_limit, threshold, prior,
                                       direction_of(row.metric) < 0)
            row.rounds_needed = rounds_needed(row.base, row.cur, first_limit, noise=prior)
    rows.sort(key=lambda r: (not r.gated, r.verdict == NO_CHANGE))
    return Comparison(rows, skipped, allow_missing)


def basis_rounds(summary: dict[str, Any], metrics: Sequence[str] | None = None,
                 absolute: bool = False) -> dict[RowKey, list[float]]:
    """Every gated row's rounds in one run, keyed with the basis compare judges them on
    (a row judged on another basis learns nothing from them): what noise.learn reads."""
    metrics = default_metrics() if metrics is None else metrics
    table, states = per_round(summary, "noise"), case_states(summary, "noise")
    return {(r.key, r.metric, r.basis): r.base
            for r in judged_rows(table, table, sorted(table), states, metrics, absolute)
            if r.gated}
