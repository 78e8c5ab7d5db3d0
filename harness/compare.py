"""Compare two runs: the CI regression gate (`python -m harness compare BASELINE CURRENT`).

Every metric two runs share is compared on its per-round values (cells with status
ok). A change is called only when the medians differ by at least --threshold AND a
one-sided Mann-Whitney U test over the rounds gives p <= alpha (0.05). With 3 rounds
on each side the smallest possible one-sided p is 1/C(6,3) = 0.05, so 3+3 is the
minimum for the test; with fewer the verdict rests on the threshold alone and every
row says so. A library's throughput is divided by its broker's raw ceiling measured in
the same run, so a baseline from a fast machine still means something on a slow one.
Method and formats: docs/ci.md.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import re
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters import BACKENDS
from core.numbers import flatten
from core.results import ResultsError
from harness.baselines import (
    BASELINES,
    add_baseline_arguments,
    read_summary,
    resolve,
    run_baseline,
    run_of,
)

# The one direction table: +1 bigger is better, -1 smaller is better (first match wins).
# Anything else has an unknown direction: shown, never gated.
DIRECTIONS: tuple[tuple[str, int], ...] = (
    ("jobs_per_s", 1), ("enqueue_per_s", 1), ("achieved_per_s", 1), ("efficiency", 1),
    ("latency_ms.*", -1), ("e2e_ms.*", -1), ("schedule_lag_ms.*", -1), ("recovery_s.*", -1),
    ("bytes_per_job", -1), ("overhead_bytes_per_job", -1), ("broker_bytes", -1),
    ("errors", -1), ("lost", -1), ("duplicated", -1), ("backlog", -1),
)
# Rates a broker ceiling also has: these are divided by the ceiling's figure.
NORMALISABLE = ("jobs_per_s", "enqueue_per_s")
DEFAULT_METRICS = "jobs_per_s"
ALPHA = 0.05
CEILINGS = {info.ceiling for info in BACKENDS.values() if info.ceiling}
NO_CHANGE = "no significant change"
FORMATS = ("text", "markdown", "github", "bencher")

# What harness.cli wires: `compare` and `baseline` subcommands.
__all__ = ["add_compare_arguments", "run_compare", "add_baseline_arguments", "run_baseline",
           "compare", "main"]

Key = tuple[str, str, str, str]  # scenario, backend, profile, params (sorted JSON)
Table = dict[Key, dict[str, dict[int, float]]]  # key -> metric -> round -> value


def direction_of(metric: str) -> int:
    return next((d for pattern, d in DIRECTIONS if fnmatch.fnmatchcase(metric, pattern)), 0)


def unit_of(metric: str) -> str:
    last = metric.split(".")[0]
    if last.endswith("_per_s"):
        return "jobs/s"
    if last.endswith("_ms"):
        return "ms"
    if last.endswith("_s"):
        return "s"
    return "bytes" if "bytes" in last else ""


def selected(metric: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(metric, p) for p in patterns)


def per_round(summary: dict[str, Any], source: str) -> Table:
    """Per-round values of every numeric metric of every ok cell."""
    table: Table = {}
    for index, cell in enumerate(summary["cells"]):
        if not isinstance(cell, dict):
            raise ResultsError(f"{source}: cell {index} is not an object")
        if cell.get("status") != "ok":
            continue
        try:
            if not isinstance(cell["params"], dict):
                raise TypeError("params is not an object")
            key = (str(cell["scenario"]), str(cell["backend"]),
                   str(cell.get("profile") or "default"), json.dumps(cell["params"],
                                                                     sort_keys=True))
            metrics = flatten(cell["metrics"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise ResultsError(f"{source}: cell {index} does not follow the schema "
                               f"(missing or bad {exc})") from None
        rnd = cell.get("round")
        rnd = rnd if isinstance(rnd, int) and not isinstance(rnd, bool) else -1 - index
        for name, value in metrics.items():
            if math.isfinite(value):
                table.setdefault(key, {}).setdefault(name, {})[rnd] = value
    return table


def label(key: Key) -> str:
    """throughput/celery-redis/duration_ms=10,jobs=2400,slots=8 (profile in [] unless default)."""
    scenario, backend, profile, params = key
    backend += "" if profile == "default" else f"[{profile}]"
    parts = [f"{k}={'null' if v is None else v}" for k, v in json.loads(params).items()]
    return "/".join([scenario, backend] + ([",".join(parts)] if parts else []))


def ceiling_of(backend: str) -> str | None:
    info = BACKENDS.get(backend)
    return info.ceiling if info else None


def normalised(table: Table, key: Key, metric: str) -> tuple[list[float], bool] | None:
    """The library's values over its ceiling's in the same run: round by round when the
    ok rounds of both are the same, else over the ceiling's median. None without a ceiling."""
    ceiling = ceiling_of(key[1])
    if ceiling is None or metric not in NORMALISABLE:
        return None
    lib = table.get(key, {}).get(metric)
    ref_cell = (table.get((key[0], ceiling, key[2], key[3]))
                or table.get((key[0], ceiling, "default", key[3])) or {})
    ref = ref_cell.get(metric)
    if not lib or not ref:
        return None
    if set(lib) == set(ref) and all(v > 0 for v in ref.values()):
        return [lib[r] / ref[r] for r in sorted(lib)], True
    middle = statistics.median(ref.values())
    return ([v / middle for v in lib.values()], False) if middle > 0 else None


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
            metrics: Sequence[str] = (DEFAULT_METRICS,), threshold: float = 0.10,
            alpha: float = ALPHA, absolute: bool = False,
            names: tuple[str, str] = ("baseline", "current")) -> list[Row]:
    """One judged row per (cell group, metric) both runs have; gated rows first, then
    rows with a called change."""
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


# ---- rendering -------------------------------------------------------------------

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


def export_series(summary: dict[str, Any], patterns: Sequence[str], absolute: bool,
                  source: str) -> list[tuple[str, str, str, list[float]]]:
    """(case, measure, unit, per-round values) of one run; normalised rates are extra rows."""
    table = per_round(summary, source)
    out = []
    for key in sorted(table):
        for metric in sorted(table[key]):
            if not selected(metric, patterns):
                continue
            out.append((label(key), metric, unit_of(metric), list(table[key][metric].values())))
            norm = None if absolute else normalised(table, key, metric)
            if norm:
                ceiling = ceiling_of(key[1])
                out.append((label(key), f"{metric}/{ceiling}", f"x {ceiling}", norm[0]))
    return out


def render_github(series: list[tuple[str, str, str, list[float]]]) -> str:
    """github-action-benchmark, tool customBiggerIsBetter: [{name, unit, value, range, extra}]."""
    entries = []
    for case, measure, unit, values in series:
        if direction_of(measure.split("/")[0]) <= 0:
            continue
        entries.append({
            "name": f"{case} {measure}", "unit": unit, "value": statistics.median(values),
            "range": f"± {(max(values) - min(values)) / 2:.6g}",
            "extra": f"median of {len(values)} round(s); min {min(values):.6g}, "
                     f"max {max(values):.6g}",
        })
    if not entries:
        raise ResultsError("nothing to export: customBiggerIsBetter takes only metrics where "
                           "bigger is better (e.g. jobs_per_s)")
    return json.dumps(entries, indent=1) + "\n"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:64]


def render_bencher(series: list[tuple[str, str, str, list[float]]]) -> str:
    """Bencher Metric Format: {benchmark: {measure slug: {value, lower_value, upper_value}}}."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for case, measure, _unit, values in series:
        out.setdefault(case, {})[slug(measure.replace("/", " per "))] = {
            "value": statistics.median(values), "lower_value": min(values),
            "upper_value": max(values)}
    if not out:
        raise ResultsError("nothing to export: no metric matches --metric")
    return json.dumps(out, indent=1) + "\n"


# ---- command line ----------------------------------------------------------------

def threshold_arg(text: str) -> float:
    """'10' or '10%' -> 0.10."""
    try:
        value = float(text.strip().rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage") from None
    if not 0 < value < 1000:
        raise argparse.ArgumentTypeError(f"{text} must be a percentage above 0")
    return value / 100


def metric_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"malformed metric list {text!r}")
    return names


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="BASELINE CURRENT: each a run dir, a summary.json or a baseline "
                             "name (results/baselines/NAME.json); github/bencher formats also "
                             "take CURRENT alone")
    parser.add_argument("--metric", type=metric_list, metavar="LIST", default=[DEFAULT_METRICS],
                        help="metrics that gate: comma list, globs ok, e.g. "
                             "'jobs_per_s,latency_ms.p99' (default: jobs_per_s)")
    parser.add_argument("--threshold", type=threshold_arg, metavar="PCT", default=0.10,
                        help="smallest change that counts, in percent (default: 10)")
    parser.add_argument("--absolute", action="store_true",
                        help="compare raw jobs/s, not jobs/s over the broker's raw ceiling")
    parser.add_argument("--report-only", action="store_true",
                        help="print everything, exit 0 even on regression (2 on bad input)")
    parser.add_argument("--format", choices=FORMATS, default="text",
                        help="text (default), markdown, github (github-action-benchmark "
                             "customBiggerIsBetter JSON), bencher (Bencher Metric Format JSON)")
    parser.add_argument("--output", type=Path, metavar="FILE", help="write there instead of stdout")
    parser.add_argument("--baselines-dir", type=Path, default=BASELINES, metavar="DIR",
                        help="where baseline names are looked up (default: results/baselines)")


def run_compare(args: argparse.Namespace) -> int:
    """0: no regression, 1: a gated row got slower. Raises ResultsError on bad input."""
    if len(args.runs) > 2:
        raise ResultsError(f"compare takes BASELINE CURRENT, got {len(args.runs)} runs")
    if len(args.runs) == 1 and args.format not in ("github", "bencher"):
        raise ResultsError("compare needs BASELINE and CURRENT (only the github and bencher "
                           "formats export a single run)")
    paths = [resolve(spec, args.baselines_dir) for spec in args.runs]
    summaries = [read_summary(p) for p in paths]
    names = tuple(str(p) for p in paths)
    rows: list[Row] = []
    if len(summaries) == 2:
        rows = compare(summaries[0], summaries[1], metrics=args.metric,
                       threshold=args.threshold, absolute=args.absolute,
                       names=(names[0], names[1]))
    head = [f"baseline: {describe(summaries[0], names[0])}",
            f"current:  {describe(summaries[-1], names[-1])}",
            f"method:   {method_line(args.threshold, ALPHA)}",
            "basis:    absolute figures" if args.absolute else
            "basis:    jobs/s of a library over its broker's raw ceiling in the same run "
            "(/redis-raw, /amqp-raw) where both runs have it, else absolute"]
    if args.format == "text":
        text = render_text(rows, head, args.report_only)
    elif args.format == "markdown":
        text = render_markdown(rows, head, args.report_only)
    else:
        series = export_series(summaries[-1], args.metric, args.absolute, names[-1])
        text = (render_github if args.format == "github" else render_bencher)(series)
    if args.output:
        try:
            args.output.write_text(text)
        except OSError as exc:
            raise ResultsError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    else:
        sys.stdout.write(text)
    regressed = [r for r in rows if r.regressed]
    if regressed:
        print(outcome_line(rows, args.report_only), file=sys.stderr)
    return 1 if regressed and not args.report_only else 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m harness.compare ARGS` is `python -m harness compare ARGS`."""
    from harness.cli import main as cli_main

    return cli_main(["compare", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
