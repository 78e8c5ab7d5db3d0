"""A comparison as a plain-text table (the terminal, CI logs) or markdown (a PR comment,
$GITHUB_STEP_SUMMARY)."""

from __future__ import annotations

import math
import statistics
from typing import Any

from core.words import counted
from harness.baselines import run_of
from harness.compare.coverage import Skip
from harness.compare.judge import DETECT, IMPROVED, MAX_ROUNDS, WORSENED, Comparison, Row
from harness.compare.metrics import direction_of
from harness.compare.table import label


def fmt(value: float) -> str:
    if value == 0 or abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.4g}"


def change(ratio: float) -> str:
    """The relative change; "up from 0" where the baseline's median was 0."""
    return "up from 0" if math.isinf(ratio) else f"{(ratio - 1) * 100:+.1f}%"


def test_cell(row: Row) -> str:
    if row.p is None:
        return "threshold only"
    return f"p={row.p:.3g} (<= {row.p_limit:.3g})"


SEES_CAP = 0.9  # a drop of 90% equals a rise of 900%: beyond it, a cost's `sees` is capped


def sees_cell(row: Row) -> str:
    """The smallest worsening the row could call, signed as its metric worsens: a drop
    for a rate, an increase for a lower-is-better figure such as CPU per job."""
    if row.sees is None:
        return ""
    if direction_of(row.metric) < 0:  # the rise a drop of `sees` equals; >10x: capped
        return ">+900%" if row.sees >= SEES_CAP else f"+{(1 / (1 - row.sees) - 1) * 100:.0f}%"
    return f"-{row.sees * 100:.0f}%"


def cells_of(row: Row) -> list[str]:
    absolute = "" if row.basis == "absolute" else change(row.abs_ratio)
    return [label(row.key), row.metric, row.basis, fmt(statistics.median(row.base)),
            fmt(statistics.median(row.cur)), change(row.ratio), absolute,
            f"{len(row.base)}/{len(row.cur)}", test_cell(row), sees_cell(row), row.verdict,
            row.note]


HEADERS = ["case", "metric", "basis", "baseline", "current", "change", "absolute change",
           "rounds", "test", "sees", "verdict", "note"]


def describe(summary: dict[str, Any], source: str) -> str:
    run = run_of(summary)
    git = str(run.get("git_revision") or "?")[:10]
    return f"{source} (git {git}, {run.get('host', '?')}, {run.get('started', '?')})"


def method_line(threshold: float, alpha: float, learned: bool = False) -> str:
    test = ("one-sided t-test on the logs of the rounds, its variance pooled with the "
            "learned noise (rows it has; Welch's for the others)" if learned else
            "one-sided Welch t-test on the logs of the rounds")
    return (f"a change is called when the medians differ by >= {threshold * 100:g}% and a "
            f"{test} gives p <= {alpha:g}, Benjamini-Hochberg-corrected across the gated rows "
            f"(needs 2+2 "
            f"rounds{', 1+1 with the learned noise' if learned else ''}; with fewer, "
            "threshold only)")


def blind_line(comparison: Comparison) -> str | None:
    """Which gated rows are too noisy to call a DETECT drop, and the rounds that would."""
    blind = comparison.blind
    if not blind:
        return None
    def need(row: Row) -> str:
        n = row.rounds_needed
        return f"about {n} rounds a side" if n else f"more than {MAX_ROUNDS} rounds a side"
    increase = 1 / (1 - DETECT) - 1
    return (f"blind spots: {counted(len(blind), 'gated row')} could not call a {DETECT * 100:.0f}% "
            f"slowdown (a rate {DETECT * 100:.0f}% lower, a cost {increase * 100:.0f}% higher) "
            "at the noise of these rounds, or the learned noise with --noise (column "
            "'sees'): " + "; ".join(f"{r.name} sees {sees_cell(r)}, needs "
                                    f"{need(r)}" for r in blind))


def skip_line(skip: Skip, allow_missing: bool) -> str:
    mark = ("allowed (--allow-missing)" if allow_missing else "FAILS the gate") if skip.fails \
        else "skipped"
    return f"{skip.name}: {skip.reason} [{mark}]"


def outcome_line(comparison: Comparison, report_only: bool) -> str:
    bad, problems = comparison.regressed, comparison.problems
    parts = []
    if bad:
        parts.append(f"REGRESSION in {counted(len(bad), 'row')}: " + "; ".join(
            f"{r.name} {change(r.ratio)}" for r in bad))
    if problems and not comparison.allow_missing:
        parts.append(f"NOT MEASURED in current: {counted(len(problems), 'case')} the "
                     "baseline gates: " + "; ".join(f"{s.name} ({s.reason})" for s in problems))
    if not parts:
        gated = sum(r.gated for r in comparison.rows)
        allowed = (f"; {counted(len(problems), 'case')} not measured in current (failed, "
                   "missing or unstable) allowed by --allow-missing" if problems else "")
        return f"no regression in {counted(gated, 'gated row')}{allowed}"
    tail = " (report only: not failing)" if report_only else ""
    return " | ".join(parts) + tail


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [HEADERS, *rows]) for i in range(len(HEADERS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in [HEADERS, *rows])


def sections(comparison: Comparison) -> tuple[list[list[str]], list[list[str]], list[str]]:
    """(gated rows, other rows, not-judged lines)."""
    rows = comparison.rows
    return ([cells_of(r) for r in rows if r.gated], [cells_of(r) for r in rows if not r.gated],
            [skip_line(s, comparison.allow_missing) for s in comparison.skipped])


def render_text(comparison: Comparison, head: list[str], report_only: bool) -> str:
    gated, other, skipped = sections(comparison)
    out = [*head, ""]
    if gated:
        out += [f"gated rows: {len(gated)} judged", text_table(gated), ""]
    if skipped:
        out += [f"not judged ({counted(len(skipped), 'case')}):", *(f"  {s}" for s in skipped), ""]
    if other:
        out += ["other shared metrics (shown, not gated):", text_table(other), ""]
    blind = blind_line(comparison)
    if blind:
        out += [blind, ""]
    out.append(outcome_line(comparison, report_only))
    return "\n".join(out) + "\n"


def md_table(rows: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    body = [[f"**{c}**" if c in (*WORSENED, *IMPROVED) else c for c in r] for r in rows]
    return "\n".join([line(HEADERS), line(["---"] * len(HEADERS)), *map(line, body)])


def render_markdown(comparison: Comparison, head: list[str], report_only: bool) -> str:
    gated, other, skipped = sections(comparison)
    out = ["### queuebench compare", "", *(f"- {h}" for h in head), ""]
    out += [f"**{outcome_line(comparison, report_only)}**", ""]
    if gated:
        out += [md_table(gated), ""]
    if skipped:
        out += [f"Not judged ({counted(len(skipped), 'case')}):", "",
                *(f"- {s}" for s in skipped), ""]
    blind = blind_line(comparison)
    if blind:
        out += [blind, ""]
    if other:
        out += [f"<details><summary>Other shared metrics ({counted(len(other), 'row')}, not gated)"
                "</summary>", "", md_table(other), "", "</details>", ""]
    return "\n".join(out)
