"""Judged rows as a plain-text table (the terminal, CI logs) or markdown (a PR comment,
$GITHUB_STEP_SUMMARY)."""

from __future__ import annotations

import math
import statistics
from typing import Any

from harness.baselines import run_of
from harness.compare.judge import Row
from harness.compare.table import label


def fmt(value: float) -> str:
    if value == 0 or abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.4g}"


def cells_of(row: Row) -> list[str]:
    ratio = "inf" if math.isinf(row.ratio) else f"{row.ratio:.3f}"
    change = "" if math.isinf(row.ratio) else f" ({(row.ratio - 1) * 100:+.1f}%)"
    test = "threshold only" if row.p is None else f"p={row.p:.3f}"
    return [label(row.key), row.metric, row.basis, fmt(statistics.median(row.base)),
            fmt(statistics.median(row.cur)), ratio + change,
            f"{len(row.base)}/{len(row.cur)}", test, row.verdict, row.note]


HEADERS = ["case", "metric", "basis", "baseline", "current", "ratio", "rounds", "test",
           "verdict", "note"]


def describe(summary: dict[str, Any], source: str) -> str:
    run = run_of(summary)
    git = str(run.get("git_revision") or "?")[:10]
    return f"{source} (git {git}, {run.get('host', '?')}, {run.get('started', '?')})"


def method_line(threshold: float, alpha: float) -> str:
    return (f"a change is called when the medians differ by >= {threshold * 100:g}% and a "
            f"one-sided Mann-Whitney U test over the rounds gives p <= {alpha:g} "
            "(needs 3+3 rounds; with fewer, threshold only)")


def outcome_line(rows: list[Row], report_only: bool) -> str:
    bad = [r for r in rows if r.regressed]
    if not bad:
        return f"no regression in {sum(r.gated for r in rows)} gated row(s)"
    tail = " (report only: not failing)" if report_only else ""
    return f"REGRESSION in {len(bad)} row(s){tail}: " + "; ".join(
        f"{r.name} {(r.ratio - 1) * 100:+.1f}%" for r in bad)


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [HEADERS, *rows]) for i in range(len(HEADERS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in [HEADERS, *rows])


def render_text(rows: list[Row], head: list[str], report_only: bool) -> str:
    out = [*head, ""]
    gated = [cells_of(r) for r in rows if r.gated]
    other = [cells_of(r) for r in rows if not r.gated]
    if gated:
        out += ["gated rows:", text_table(gated), ""]
    if other:
        out += ["other shared metrics (shown, not gated):", text_table(other), ""]
    out.append(outcome_line(rows, report_only))
    return "\n".join(out) + "\n"


def md_table(rows: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    body = [[f"**{c}**" if c in ("slower", "faster") else c for c in r] for r in rows]
    return "\n".join([line(HEADERS), line(["---"] * len(HEADERS)), *map(line, body)])


def render_markdown(rows: list[Row], head: list[str], report_only: bool) -> str:
    out = ["### queuebench compare", "", *(f"- {h}" for h in head), ""]
    gated = [cells_of(r) for r in rows if r.gated]
    other = [cells_of(r) for r in rows if not r.gated]
    out += [f"**{outcome_line(rows, report_only)}**", ""]
    if gated:
        out += [md_table(gated), ""]
    if other:
        out += [f"<details><summary>Other shared metrics ({len(other)} rows, not gated)"
                "</summary>", "", md_table(other), "", "</details>", ""]
    return "\n".join(out)
