"""The `compare` subcommand (wired by harness.cli): its arguments and its run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core.results import ResultsError
from core.words import counted
from harness.baselines import BASELINES, ok_cells, read_summary, resolve, run_of
from harness.compare.export import export_series, render_bencher, render_github
from harness.compare.fingerprint import check, forced_params, without_params
from harness.compare.judge import ALPHA, THRESHOLD, Comparison, basis_rounds, compare
from harness.compare.metrics import default_metrics
from harness.compare.noise import NoiseModel, freedom_summary, learn, read_runs, run_identity
from harness.compare.render import describe, method_line, outcome_line, render_markdown, render_text

FORMATS = ("text", "markdown", "github", "github-smaller", "bencher")
EXPORTS = ("github", "github-smaller", "bencher")  # one run's figures: CURRENT alone will do


def threshold_arg(text: str) -> float:
    """'10' or '10%' -> 0.10."""
    try:
        value = float(text.strip().rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage") from None
    if not 0 < value < 100:  # a rate falls by less than 100%: a threshold there never fires
        raise argparse.ArgumentTypeError(f"{text} must be a percentage above 0 and below 100")
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
    gated = default_metrics()
    parser.add_argument("--metric", type=metric_list, metavar="LIST", default=None,
                        help="metrics that gate: comma list, globs ok, e.g. "
                             f"'jobs_per_s,latency_ms.p99' (default: {','.join(gated)})")
    parser.add_argument("--threshold", type=threshold_arg, metavar="PCT", default=THRESHOLD,
                        help="smallest change that counts, in percent (default: "
                             f"{THRESHOLD * 100:g})")
    parser.add_argument("--absolute", action="store_true",
                        help="compare raw jobs/s, not jobs/s over the broker's raw ceiling")
    parser.add_argument("--allow-missing", action="store_true",
                        help="a case the baseline gates that failed, is missing or unstable "
                             "in CURRENT is listed, not failing")
    parser.add_argument("--force", action="store_true",
                        help="compare even when slots, profiles or the window differ")
    parser.add_argument("--report-only", action="store_true",
                        help="print everything, exit 0 even on regression (2 on bad input)")
    parser.add_argument("--format", choices=FORMATS, default="text",
                        help="text (default), markdown, github / github-smaller "
                             "(github-action-benchmark customBiggerIsBetter / "
                             "customSmallerIsBetter JSON: rates / CPU per job and latencies), "
                             "bencher (Bencher Metric Format JSON)")
    parser.add_argument("--noise", type=Path, metavar="DIR",
                        help="learn each row's round noise from the runs in DIR (history "
                             "entries or run directories of the same kind of machine, e.g. "
                             "main's history) and test against it instead of Welch's test on "
                             "the two runs' rounds alone: more power from the same 3 rounds")
    parser.add_argument("--output", type=Path, metavar="FILE", help="write there instead of stdout")
    parser.add_argument("--baselines-dir", type=Path, default=BASELINES, metavar="DIR",
                        help="where baseline names are looked up (default: results/baselines)")


def unfinished_lines(summaries: list[dict[str, Any]], sides: tuple[str, ...]) -> list[str]:
    """A warning per run that did not finish (interrupted, or its coordinator died): a
    baseline's missing cases are not gated, a current run's fail the gate."""
    lines = []
    for side, summary in zip(sides, summaries, strict=True):
        run = run_of(summary)
        if run.get("complete", True):
            continue
        why = f"was interrupted ({run['interrupted']})" if run.get("interrupted") else \
            "did not finish"
        planned = run.get("planned_cells")
        held = f"{len(summary['cells'])} of {planned} planned cells" if planned else \
            counted(len(summary["cells"]), "cell")
        cost = ("the cases it never ran are not gated" if side == "baseline" else
                "the cases it never ran count as missing")
        lines.append(f"warning:  the {side} run {why}: it holds {held}; {cost}")
    return lines


def run_compare(args: argparse.Namespace) -> int:
    """0: no regression, 1: a gated row got slower or a gated case was not measured.
    Raises ResultsError on bad input or runs that measured different things."""
    if len(args.runs) > 2:
        raise ResultsError(f"compare takes BASELINE CURRENT, got {counted(len(args.runs), 'run')}")
    if len(args.runs) == 1 and args.format not in EXPORTS:
        raise ResultsError("compare needs BASELINE and CURRENT (only the github, "
                           "github-smaller and bencher formats export a single run)")
    paths = [resolve(spec, args.baselines_dir) for spec in args.runs]
    summaries = [read_summary(p) for p in paths]
    names = tuple(str(p) for p in paths)
    comparison = Comparison([])
    head = [f"baseline: {describe(summaries[0], names[0])}",
            f"current:  {describe(summaries[-1], names[-1])}"]
    head += unfinished_lines(summaries, ("baseline", "current")[-len(summaries):])
    if len(summaries) == 2 and run_identity(summaries[0]) == run_identity(summaries[1]):
        head.append("note:     baseline and current are the same run: nothing can change")
    noise: NoiseModel | None = None
    if len(summaries) == 2:
        head += check(summaries[0], summaries[1], args.force)
        forced = forced_params(*summaries) if args.force else frozenset()
        if forced:
            summaries = [without_params(summary, forced) for summary in summaries]
            head.append(f"forced:   cases paired without {', '.join(sorted(forced))}")
        if args.noise:
            runs, notes = read_runs(args.noise, summaries)
            head += [f"note:     {note}" for note in notes]
            noise = learn(runs, lambda s: basis_rounds(without_params(s, forced), args.metric,
                                                       args.absolute))
        comparison = compare(summaries[0], summaries[1], metrics=args.metric,
                             threshold=args.threshold, absolute=args.absolute,
                             allow_missing=args.allow_missing, names=(names[0], names[1]),
                             noise=noise)
        if noise is not None:
            gated = [(r.key, r.metric, r.basis) for r in comparison.rows if r.gated]
            head.append(f"noise:    learned from {len(runs)} runs in {args.noise}: "
                        f"{freedom_summary(noise, gated)}")
    if alike := comparison.with_their_ceiling:
        head.append(f"warning:  {counted(len(alike), 'row')} called slower whose raw ceiling was "
                    "called slower in the same case too (" + "; ".join(
                        f"{r.name}" for r in alike) + "): the machine may have changed in "
                    "a way the speed probe does not measure; read them beside the "
                    "ceiling's row (shown below the gated rows)")
    if not any(r.gated for r in comparison.rows):  # a gate that checks nothing passes
        head.append("warning:  no gated row in common: this comparison checks nothing "
                    "(the raw ceilings are never gated; run a library backend, or choose "
                    "--metric)")
    untested = sum(r.gated and r.p is None and not r.at_zero for r in comparison.rows)
    if untested:
        head.append(f"warning:  {counted(untested, 'gated row')} with too few rounds for the test: "
                    f"their verdicts rest on the {args.threshold:.0%} threshold alone, which "
                    "a noisy machine passes by chance; it needs 2 ok rounds a side (run "
                    "both with --rounds 3)")
    head += [f"method:   {method_line(args.threshold, ALPHA, noise is not None)}",
             "basis:    absolute figures" if args.absolute else
             "basis:    jobs/s and CPU per job with the machine's speed taken out (per "
             "loop: jobs_per_loop, cpu_loops_per_job) where both runs have it, else a "
             "library's jobs/s over its broker's raw ceiling round by round (/redis-raw, "
             "/amqp-raw, /pg-raw), else absolute"]
    if args.format == "text":
        text = render_text(comparison, head, args.report_only)
    elif args.format == "markdown":
        text = render_markdown(comparison, head, args.report_only)
    else:
        patterns = args.metric or default_metrics()
        if not ok_cells(summaries[-1]):
            raise ResultsError(f"nothing to export: {names[-1]} has no ok cell")
        series = export_series(summaries[-1], patterns, args.absolute, names[-1])
        if not series:
            raise ResultsError(f"nothing to export: no metric of {names[-1]} matches "
                               f"--metric {','.join(patterns)}")
        text = (render_bencher(series) if args.format == "bencher" else
                render_github(series, bigger_is_better=args.format == "github"))
    if args.output:
        try:
            args.output.write_text(text)
        except OSError as exc:
            raise ResultsError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    else:
        sys.stdout.write(text)
    if comparison.failed:
        print(outcome_line(comparison, args.report_only), file=sys.stderr)
    return 1 if comparison.failed and not args.report_only else 0
