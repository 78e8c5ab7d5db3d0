"""Command line: python -m harness <command>, one handler per command (COMMANDS).

Bad input ends with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from adapters import BACKENDS, backend_names
from adapters.base import PROFILE_SETS, PROFILES
from core import interrupts
from core.brokers import KINDS, broker_kind
from core.brokers.base import BrokerKind
from core.results import ResultsError
from core.words import counted
from harness import envs, variants
from harness.argparsing import OneLineParser, UsageError, name_list, number_list, whole_number
from harness.baselines import add_baseline_arguments, run_baseline
from harness.brokers import unreachable_user_urls
from harness.compare.command import add_compare_arguments, run_compare
from harness.history.command import add_history_arguments, run_history
from harness.run_checks import (
    check_payload_limits,
    fresh_default_out,
    fresh_out,
    say_durations_too_long,
    say_not_planned,
    say_unused_options,
    unclaim,
)
from harness.variants import is_variant
from scenarios import SCENARIOS, everyday_scenario_names, scenario_names
from scenarios.base import RunOptions

PROG = "python -m harness"
# run: every cell finished, but a backend failed or could not run. Not 1, which Python
# gives a crash too, so a script can tell an incomplete run from a broken harness.
EXIT_INCOMPLETE = 3
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a command its pipe cut short
# Bounds of run's numbers: beyond them a cell cannot finish in any sensible time or
# memory (a 100 GB payload, an infinite rate), so they are bad input, said at once.
MAX_ROUNDS = 100
MAX_SLOTS = 1024
MAX_DURATION_MS = 3_600_000.0  # an hour (the e2e tests hang a cell on 600 s jobs)
MAX_RATE = 10_000_000.0
# A payload cell queues at least a few hundred jobs (sustained.py: min_backlog / 4) so its
# window is not fed by top-ups: 250 x 16 MiB is 4 GiB of payload, as much as a
# benchmark machine should hold; each broker then checks its own message limit.
MAX_PAYLOAD_BYTES = min(16 * 1024 * 1024, max(kind.message_limit for kind in KINDS.values()))
MAX_MEMORY_JOBS = 10_000_000
MAX_DELAY_US = 1_000_000


def delay_microseconds(text: str) -> int | float:
    """--inject-delay-us: 0 (off) to MAX_DELAY_US microseconds, in steps of 0.1 us (asyncio's
    noop job takes about 20 us, so a step of 1 us moves its rate by about a tenth); whole
    values are kept as ints."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of microseconds") from None
    if not 0 <= value <= MAX_DELAY_US:
        raise argparse.ArgumentTypeError(
            f"the delay (us) must be from 0 to {MAX_DELAY_US:,}: got {text}")
    if round(value, 1) != value:
        raise argparse.ArgumentTypeError(f"the delay (us) takes steps of 0.1 us: got {text}")
    return int(value) if value.is_integer() else value


def window_seconds(text: str) -> float:
    """--window: seconds of steady state counted per throughput/payload cell (1 to 600)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 1 <= value <= 600:
        raise argparse.ArgumentTypeError(f"{text} must be between 1 and 600 seconds")
    return value


def profile_list(text: str) -> tuple[str, ...]:
    """A comma list of profiles; `both` and `all` stand for their PROFILE_SETS."""
    names = [n.strip() for n in text.split(",")]
    bad = [n for n in names if n not in PROFILES and n not in PROFILE_SETS]
    if bad:
        raise argparse.ArgumentTypeError(
            f"unknown profile {', '.join(map(repr, bad))}; valid: "
            f"{', '.join([*PROFILES, *PROFILE_SETS])}")
    return tuple(dict.fromkeys(p for n in names for p in PROFILE_SETS.get(n, (n,))))


def broker_url(kind: type[BrokerKind]) -> Callable[[str], str]:
    """argparse type: a URL of broker `kind` (its shape only; it is probed when used)."""

    def parse(text: str) -> str:
        problem = kind.url_problem(text)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return text

    return parse


def add_broker_urls(parser: argparse.ArgumentParser) -> None:
    """--<kind>-url for every broker kind."""
    for kind in KINDS.values():
        parser.add_argument(kind.flag(), dest=f"{kind.name}_url", type=broker_url(kind),
                            help=f"use this {kind.title} instead of starting one")


def broker_urls(args: argparse.Namespace) -> dict[str, str | None]:
    """The user-given URL of each broker kind (None: the harness starts one)."""
    return {name: getattr(args, f"{name}_url", None) for name in KINDS}


def user_urls_reachable(args: argparse.Namespace, backends: Sequence[str]
                        ) -> dict[str, str | None]:
    """broker_urls, once each user-given URL answers; UsageError naming every one that
    does not (bad input: nothing has started yet). A URL no chosen backend uses is checked
    too, said to be unused, and left out of the run's record."""
    urls = broker_urls(args)
    if problems := unreachable_user_urls(urls, {kind for kind, url in urls.items() if url}):
        raise UsageError("; ".join(problems))
    used = {kind for name in backends if (kind := BACKENDS[name].broker)}
    for kind in sorted(k for k, url in urls.items() if url and k not in used):
        print(f"{broker_kind(kind).flag()} not used: no chosen backend runs on {kind}",
              file=sys.stderr)
    return {kind: url if kind in used else None for kind, url in urls.items()}


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog=PROG, description="queuebench: a fair benchmark of Python "
                           "task queues")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    run = sub.add_parser("run", help="run scenarios against backends")
    run.add_argument("--scenario",
                     type=name_list(scenario_names, "scenario", all_of=everyday_scenario_names),
                     default=everyday_scenario_names(),
                     help="comma list or all (default: all = every scenario but the long "
                          "sweeps scaling and depth, which run by name)")
    run.add_argument("--backend", type=name_list(
        backend_names, "backend", is_variant,
        hint="a backend with its own environment may be BACKEND@VERSION"),
                     default=backend_names(), help="comma list or all (default: all); "
                     "BACKEND@VERSION runs that release of its library beside the pinned one")
    run.add_argument("--with", dest="checkouts", action="append", default=[],
                     metavar="PACKAGE=PATH",
                     help="also run every chosen backend that uses PACKAGE (celery, kombu, "
                     "dramatiq, arq, rq, redis-py, pika) with this local checkout of it, as "
                     "BACKEND@local (repeatable)")
    run.add_argument("--quick", action="store_true", help="short cells (a smoke run)")
    run.add_argument("--rounds", type=whole_number(MAX_ROUNDS, "rounds"), default=1,
                     help="repeat every cell N times (default 1; 3 or more for compare's "
                     "significance test)")
    run.add_argument("--slots", type=whole_number(MAX_SLOTS, "slots"), default=8,
                     help="jobs that may run at once, the same for every backend (default 8)")
    run.add_argument("--profile", type=profile_list, default=("default",),
                     help="setting profiles, a comma list of default, reliable (the docs "
                     "against lost jobs), tuned (the docs for throughput; default runs "
                     "beside it as its reference); both = default,reliable; all = every "
                     "profile (default: default)")
    run.add_argument("--durations",
                     type=number_list(float, 0, MAX_DURATION_MS, "job duration (ms)"),
                     help="throughput job durations in ms (default 0,1,10,100; 0,10 with "
                     "--quick)")
    run.add_argument("--rates", type=number_list(float, 0.1, MAX_RATE, "rate (jobs/s)"),
                     help="latency: fixed offered rates in jobs/s (default 50,200,1000; 200 "
                     "with --quick)")
    run.add_argument("--payload-sizes",
                     type=number_list(int, 1, MAX_PAYLOAD_BYTES, "payload size (bytes)"),
                     help="payload and memory: sizes in bytes (payload's default "
                     "64,1024,16384,1048576, 64,1048576 with --quick; memory's "
                     "64,16384, 1024 with --quick)")
    run.add_argument("--memory-jobs", type=number_list(int, 1, MAX_MEMORY_JOBS, "job count"),
                     metavar="N,N,...",
                     help="memory: jobs queued per cell (default 5000; 2000 with --quick), "
                     "each capped by the scenario's payload budget")
    run.add_argument("--slots-sweep", type=number_list(int, 1, MAX_SLOTS, "slot count"),
                     metavar="N,N,...",
                     help="scaling: the slot counts to sweep (default 1,2,4,8,16,32; "
                     "1,4,16 with --quick)")
    run.add_argument("--sweep", action=argparse.BooleanOptionalAction, default=None,
                     help="time the raw ceilings at each consumer-process count first and "
                     "run them at the fastest (default: in a full run, not with --quick)")
    run.add_argument("--window", type=window_seconds, metavar="SECONDS",
                     help="steady-state window counted per throughput, payload, scaling and "
                     "depth cell and latency's max cell (default 2 with --quick, else 8)")
    run.add_argument("--inject-delay-us", type=delay_microseconds, metavar="N",
                     help="test knob: every library job burns N us of CPU (steps of 0.1 "
                     "us; not the raw ceilings; 0 is off), a known slowdown for the gate's "
                     "tests; baseline save refuses such runs")
    run.add_argument("--results", action="store_true",
                     help="turn result backends on for every backend (off by default)")
    run.add_argument("--out", type=Path, help="run directory (default results/<run-id>)")
    add_broker_urls(run)

    report = sub.add_parser("report", help="render report.html and charts/ from a run dir")
    report.add_argument("run_dir", type=Path, help="a results/<run-id> directory")

    selftest = sub.add_parser("selftest", help="is the harness ever the bottleneck?")
    selftest.add_argument("--backend", type=name_list(backend_names, "backend"),
                          default=backend_names(),
                          help="backends to test (default: all); the producer is timed "
                               "against the raw ceilings and asyncio, the observer effect "
                               "measured on the broker-backed ones")
    add_broker_urls(selftest)
    selftest.add_argument("--out", type=Path, help="the self-test's own results folder")
    selftest.add_argument("--quick", action="store_true",
                          help="one repeat of shorter observer cells instead of three")
    selftest.add_argument("--observer-repeats", type=whole_number(MAX_ROUNDS, "repeats"),
                          metavar="N", help="alternating drains per backend for the observer "
                                            "effect (default 3, 1 with --quick): more groups, "
                                            "a narrower interval")
    selftest.add_argument("--json", action="store_true", help="print the report as JSON")
    selftest.add_argument("--attach", type=Path, metavar="RUN_DIR",
                          help="also save the observer effect as RUN_DIR/observer.json, "
                               "which that run's report shows")

    add_compare_arguments(sub.add_parser(
        "compare", help="compare two runs (or a baseline); exit 1 on a significant regression"))
    add_baseline_arguments(sub.add_parser("baseline", help="save or list baselines"))
    add_history_arguments(sub.add_parser(
        "history", help="keep runs in a history directory and chart them over commits"))

    sub.add_parser("list", help="backends and scenarios, and whether each can run here")
    add_broker_urls(sub.add_parser("doctor", help="check brokers, binaries and environments"))
    setup = sub.add_parser("setup", help="build the backend environments (.venvs/)")
    setup.add_argument("--backend", type=name_list(backend_names, "backend"),
                       default=backend_names(),
                       help="build only these backends' environments (default: all)")
    setup.add_argument("--test-tools", action="store_true",
                       help="also install what the tests need (chromium, docker-compose)")
    figures = sub.add_parser("docs-figures",
                             help="regenerate the figures in docs/ from committed results")
    figures.add_argument("--check", action="store_true",
                         help="only say which docs are out of date (exit 1 if any)")
    return parser


def render_report(run_dir: Path) -> None:
    """Render the report of a run; a report that cannot render never loses the results."""
    from reports import render

    try:
        print(f"report: {render(run_dir)}")
    except (ResultsError, OSError, ValueError) as exc:
        print(f"report not rendered ({exc}); the results are in {run_dir}", file=sys.stderr)


def with_reference(profiles: tuple[str, ...]) -> tuple[str, ...]:
    """`profiles`, plus default when tuned is there without it: tuned is read as a
    change from default, so its reference runs beside it."""
    if "tuned" in profiles and "default" not in profiles:
        return (*profiles, "default")
    return profiles


def cmd_run(args: argparse.Namespace) -> int:
    from harness.runner import RunConfig, Runner, default_run_dir

    rounds = args.rounds
    if with_reference(args.profile) != args.profile:
        args.profile = with_reference(args.profile)
        print("profile tuned: default runs too, as its reference", file=sys.stderr)
    options = RunOptions(quick=args.quick, slots=args.slots, profile=args.profile[0],
                         results=args.results, profiles=args.profile,
                         durations_ms=args.durations, rates=args.rates,
                         payload_sizes=args.payload_sizes, window_s=args.window,
                         slots_sweep=args.slots_sweep, memory_jobs=args.memory_jobs,
                         inject_delay_us=args.inject_delay_us or 0, sweep=args.sweep)
    packages = [envs.add_checkout(text)[0] for text in args.checkouts]
    # BACKEND (its @local twin joins it) or BACKEND@local alone take a checkout
    takers = [b.removesuffix(f"@{envs.LOCAL}") for b in args.backend
              if "@" not in b or b.endswith(f"@{envs.LOCAL}")]
    unused = [p for p in packages if not any(variants.uses(b, p) for b in takers)]
    if unused:  # asked for, and nothing would run it: a run without it would mislead
        raise UsageError(f"--with {', '.join(unused)}: none of the chosen backends "
                         f"({', '.join(args.backend)}) uses it")
    local = [b for b in args.backend if b.endswith(f"@{envs.LOCAL}")]
    if local and not packages:  # it would build the pinned release under a checkout's name
        raise UsageError(f"{', '.join(local)}: @{envs.LOCAL} is a --with checkout's twin; "
                         f"give --with PACKAGE=PATH (or name the backend without it)")
    backends = variants.expand(args.backend, packages)
    check_payload_limits(args.payload_sizes or (), backends)
    say_durations_too_long(args.scenario, options)
    say_unused_options(args.scenario, options)
    say_not_planned(args.scenario, backends)
    urls = user_urls_reachable(args, backends)
    out = (fresh_out(args.out.resolve()) if args.out else
           fresh_default_out(default_run_dir().resolve()))
    try:
        variants.prepare(backends)
    except BaseException:  # the run never started: its folder is free again
        unclaim(out)
        raise
    config = RunConfig(scenarios=args.scenario, backends=backends, rounds=rounds, out=out,
                       options=options, urls=urls)
    outcome = Runner(config).run()
    try:
        with interrupts.handled():  # SIGTERM too: one line, not a silent death
            render_report(out)
    except interrupts.Interrupted as exc:
        print(f"{PROG} run: interrupted ({exc}) while rendering the report; the results are "
              f"in {out} (python -m harness report {out} renders it)", file=sys.stderr)
        return 130
    others = [p for p in args.profile if p != "default"]
    if others and "default" in args.profile:
        print_profile_pairs(out, others)
    cells = outcome["cells"]
    counts = {s: sum(c["status"] == s for c in cells) for s in ("ok", "failed", "skipped")}
    print(f"{out}: {counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} skipped")
    for reason in sorted({f"{c['backend']}: {c['reason']}" for c in cells
                          if c["status"] == "skipped"}):
        print(f"  skipped {reason}")
    if outcome["interrupted"]:
        print(f"interrupted ({outcome['interrupted']}); finished cells are in {out}/summary.json",
              file=sys.stderr)
        return 130
    if incomplete := incomplete_backends(cells):
        where = (f"the other cells are in {out}/summary.json" if counts["ok"] else
                 f"the reasons are in {out}/summary.json")
        print(f"incomplete: {'; '.join(incomplete)} (exit {EXIT_INCOMPLETE}; {where})",
              file=sys.stderr)
        return EXIT_INCOMPLETE
    return 0


def incomplete_backends(cells: list[dict[str, Any]]) -> list[str]:
    """What makes a finished run exit EXIT_INCOMPLETE: a backend with a failed cell, or
    with no cell that ran (skipped throughout: its environment or broker could not be
    had). A cell skipped by design beside ok ones (a broker-kill on a user-given broker)
    is not a problem."""
    problems = []
    for backend in dict.fromkeys(c["backend"] for c in cells):
        mine = [c for c in cells if c["backend"] == backend]
        failed = sum(c["status"] == "failed" for c in mine)
        skipped = sum(c["status"] == "skipped" for c in mine)
        if failed:
            also = f", {skipped} skipped" if skipped else ""
            problems.append(f"{backend}: {failed} of {counted(len(mine), 'cell')} failed{also}")
        elif not any(c["status"] == "ok" for c in mine):
            problems.append(f"{backend}: skipped ({mine[0].get('reason')})")
    return problems


def print_profile_pairs(run_dir: Path, others: list[str]) -> None:
    """Each other profile's figures beside the default ones (reports/profiles.py): what
    tuned changed, what reliable's durability costs."""
    from reports import data, profiles

    try:
        run = data.load(run_dir)
    except (ResultsError, OSError, ValueError) as exc:
        print(f"{', '.join(others)} against default not shown ({exc})", file=sys.stderr)
        return
    for profile in others:
        lines = profiles.summary_lines(run, profile)
        print("\n".join([f"{profile} against default:", *lines]) if lines else
              f"{profile} against default: no point ran ok in both profiles")


def cmd_report(args: argparse.Namespace) -> int:
    from reports import render

    print(render(args.run_dir.resolve()))  # the page names its folder: absolute, as a run's
    return 0


def cmd_selftest(args: argparse.Namespace) -> int:
    import json

    from harness import selftest
    from harness.observer import QUICK, ObserverSettings
    from harness.runner import default_run_dir
    from reports.observer import OBSERVER_FILE

    if args.attach and not (args.attach / "summary.json").exists():
        raise UsageError(f"--attach {args.attach}: not a run folder (no summary.json)")
    urls = user_urls_reachable(args, args.backend)
    first = default_run_dir()
    out = (fresh_out(args.out) if args.out else
           fresh_default_out(first.with_name(f"selftest-{first.name}")))
    settings = QUICK if args.quick else ObserverSettings()
    if args.observer_repeats:
        settings = dataclasses.replace(settings, repeats=args.observer_repeats)
    try:
        with interrupts.handled():  # Ctrl-C and SIGTERM stop it, brokers and all
            report = selftest.run(args.backend, out.resolve(), urls, settings)
    except interrupts.Interrupted as exc:
        sys.stderr.write(f"{PROG}: selftest interrupted ({exc}); nothing was judged\n")
        return 130
    (out / "selftest.json").write_text(json.dumps(report, indent=1))
    for folder in (out, args.attach):
        if folder:
            (folder / OBSERVER_FILE).write_text(json.dumps(report["observer"], indent=1))
    print(json.dumps(report, indent=1) if args.json else selftest.render(report))
    if args.attach:  # its report shows the observer effect once rendered again
        from reports import render

        try:
            sys.stderr.write(f"report: {render(args.attach.resolve())} (with this observer "
                             "effect)\n")
        except (ResultsError, OSError, ValueError) as exc:
            sys.stderr.write(f"warning: {args.attach}/report.html not rendered again ({exc}); "
                             f"`python -m harness report {args.attach}` does it\n")
    return 0 if selftest.succeeded(report) else 1


def backend_problem(name: str, urls: dict[str, str | None]) -> str | None:
    """Why `name` cannot run here, or None."""
    info = BACKENDS[name]
    env_problem = envs.status(info.family)
    if env_problem:
        return env_problem
    if info.broker is None:
        return None
    return broker_kind(info.broker).problem(urls.get(info.broker))


def cmd_list(_args: argparse.Namespace) -> int:
    print("backends:")
    for name, info in BACKENDS.items():
        problem = backend_problem(name, {})
        state = "ready" if problem is None else f"cannot run: {problem}"
        print(f"  {name:18} {info.description}\n  {'':18} {state}")
    print("scenarios:")
    for name, scenario in SCENARIOS.items():
        print(f"  {name:18} {scenario.description}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    urls = broker_urls(args)
    rows = [line for name, kind in KINDS.items() for line in kind.doctor_lines(urls[name])]
    for family in sorted({i.family for i in BACKENDS.values()} - {envs.CORE}):
        problem = envs.status(family) or envs.installed_problem(family)
        where = envs.VENVS / family
        shown = f".venvs/{family}" if where == envs.REPO_ROOT / ".venvs" / family else str(where)
        rows.append((shown, problem or "ok", problem is None))
    width = max(len(subject) for subject, _, _ in rows)
    for subject, finding, _ok in rows:
        print(f"{subject:{width}}  {finding}")
    problems = sum(not ok for _, _, ok in rows)
    print("all good" if not problems else counted(problems, "problem"))
    return 0 if not problems else 1


def cmd_setup(args: argparse.Namespace) -> int:
    from harness import system

    for message in system.ensure(with_test_tools=args.test_tools):
        print(message)
    families = sorted({BACKENDS[b].family for b in args.backend} - {envs.CORE})
    for family in families:
        state = envs.status(family)
        wrong = envs.installed_problem(family) if state is None else None
        if state is None and wrong is None:
            print(f".venvs/{family}: up to date")
            continue
        print(f".venvs/{family}: {'rebuilding, ' + wrong if wrong else 'building'} "
              f"({', '.join(envs.requirements(family))})", flush=True)
        envs.build(family, force=wrong is not None)
    return 0


def cmd_docs_figures(args: argparse.Namespace) -> int:
    from harness.docfigures import FiguresError, update_docs

    try:
        stale = update_docs(check=args.check)
    except FiguresError as exc:
        raise UsageError(str(exc)) from None
    verb = "out of date" if args.check else "rewritten"
    print("\n".join(f"{doc}: {verb}" for doc in stale) or "docs/ figures are up to date")
    return 1 if args.check and stale else 0


COMMANDS = {"run": cmd_run, "report": cmd_report, "selftest": cmd_selftest, "list": cmd_list,
            "doctor": cmd_doctor, "setup": cmd_setup, "compare": run_compare,
            "baseline": run_baseline, "history": run_history,
            "docs-figures": cmd_docs_figures}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sub = getattr(args, f"{args.command}_command", None)  # baseline save, history add
    command = f"{args.command} {sub}" if sub else args.command
    try:
        return COMMANDS[args.command](args)
    except (ResultsError, UsageError, envs.EnvError) as exc:
        sys.stderr.write(f"{PROG} {command}: error: {exc}\n")  # as argparse's
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    except BrokenPipeError:  # the reader of our output left (`doctor | head`)
        try:  # no second error when Python flushes stdout at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_BROKEN_PIPE
    except OSError as exc:  # a results folder removed or full mid-run, a file unreadable
        where = f": {exc.filename}" if exc.filename else ""
        sys.stderr.write(f"{PROG} {command}: error: {exc.strerror or exc}{where}\n")
        return 1
