"""Named baselines: results/baselines/NAME.json, committed copies of a run's summary.json.

`python -m harness baseline save NAME [RUN_DIR]` stores one (after checking it is a
usable summary); `python -m harness compare NAME RUN` finds it by name.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from core.results import ResultsError, load_summary, make_dir
from core.words import counted

REPO_ROOT = Path(__file__).resolve().parent.parent
BASELINES = REPO_ROOT / "results" / "baselines"
LATEST = REPO_ROOT / "results" / "latest"
NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def check_name(name: str) -> str:
    """A baseline name becomes a file name, so only [A-Za-z0-9_.-], not starting with a dot."""
    if not NAME_RE.fullmatch(name):
        raise ResultsError(f"bad baseline name {name!r}: use letters, digits, '_', '.', '-' "
                           "(not starting with '.')")
    return name


def read_summary(path: Path) -> dict[str, Any]:
    """load_summary, with unreadable files reported as bad input rather than a traceback."""
    try:
        return load_summary(path)
    except OSError as exc:
        raise ResultsError(f"cannot read {path}: {exc.strerror or exc}") from None


def run_of(summary: dict[str, Any]) -> dict[str, Any]:
    run = summary.get("run")
    return run if isinstance(run, dict) else {}


def config_of(summary: dict[str, Any]) -> dict[str, Any]:
    """The run's config (run.json's), {} when the summary has none or a malformed one."""
    config = run_of(summary).get("config")
    return config if isinstance(config, dict) else {}


def ok_cells(summary: dict[str, Any]) -> int:
    return sum(isinstance(c, dict) and c.get("status") == "ok" for c in summary["cells"])


def resolve(spec: str, baselines: Path = BASELINES) -> Path:
    """A run dir or summary file that exists wins; otherwise a simple name is a baseline."""
    path = Path(spec)
    if path.exists():
        return path
    if NAME_RE.fullmatch(spec) and "/" not in spec:
        named = baselines / (spec if spec.endswith(".json") else f"{spec}.json")
        if named.exists():
            return named
        raise ResultsError(f"no baseline named {spec!r} ({named} does not exist); save one "
                           f"with: python -m harness baseline save {spec} RUN_DIR")
    raise ResultsError(f"{spec}: no such run directory or summary file")


def save(name: str, run: Path, baselines: Path = BASELINES) -> tuple[Path, dict[str, Any]]:
    """Validate the run's summary, then copy it byte for byte to BASELINES/NAME.json."""
    check_name(name)
    summary = read_summary(run)
    if not ok_cells(summary):
        raise ResultsError(f"{run}: no cell finished ok; nothing to use as a baseline")
    delay = config_of(summary).get("inject_delay_us")
    if delay:
        raise ResultsError(f"{run}: ran with --inject-delay-us {delay} (a test knob slowing "
                           "every library job); not a baseline")
    source = run / "summary.json" if run.is_dir() else run
    target = baselines / f"{name}.json"
    make_dir(baselines)
    try:
        tmp = target.with_suffix(".json.tmp")
        shutil.copyfile(source, tmp)
        tmp.replace(target)
    except OSError as exc:
        raise ResultsError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target, summary


def add_baseline_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="baseline_command", required=True, metavar="{save,list}")
    save_cmd = sub.add_parser("save", help="store a run's summary.json as a named baseline")
    save_cmd.add_argument("name", metavar="NAME", help="baseline name ([A-Za-z0-9_.-]+), e.g. main")
    save_cmd.add_argument("run", nargs="?", type=Path, default=LATEST, metavar="RUN_DIR",
                          help="run directory or summary.json (default: results/latest)")
    save_cmd.add_argument("--replace", action="store_true",
                          help="overwrite a baseline of that name (refused without it)")
    list_cmd = sub.add_parser("list", help="list the saved baselines")
    for cmd in (save_cmd, list_cmd):
        cmd.add_argument("--baselines-dir", type=Path, default=BASELINES, metavar="DIR",
                         help="where baselines live (default: results/baselines)")


def run_baseline(args: argparse.Namespace) -> int:
    """Raises ResultsError on bad input (harness.cli turns that into exit 2)."""
    if args.baseline_command == "list":
        if not args.baselines_dir.is_dir():
            raise ResultsError(f"{args.baselines_dir}: no such baselines directory")
        found = sorted(args.baselines_dir.glob("*.json"))
        if not found:
            print(f"no baselines in {args.baselines_dir}")
        for path in found:
            try:
                summary = read_summary(path)
            except ResultsError as exc:  # one bad file hides none of the others
                print(f"{path.stem:20} unreadable: {exc}")
                continue
            run = run_of(summary)
            git = str(run.get("git_revision", "?"))[:10]
            print(f"{path.stem:20} {counted(ok_cells(summary), 'ok cell')}, git {git}, "
                  f"{run.get('host', '?')}, {run.get('started', '?')}")
        return 0
    existing = args.baselines_dir / f"{args.name}.json"
    replaced = existing.exists()
    if replaced and not args.replace:  # a committed baseline is CI's reference
        raise ResultsError(f"{existing} exists; --replace to overwrite it")
    target, summary = save(args.name, args.run, args.baselines_dir)
    cells = counted(ok_cells(summary), "ok cell")
    print(f"{'replaced' if replaced else 'saved'} {target} ({cells} from {args.run})")
    if not run_of(summary).get("complete", True):
        print(f"note: {args.run} did not finish normally; the baseline holds only its "
              "finished cells", file=sys.stderr)
    return 0
