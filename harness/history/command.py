"""The `history` subcommand (wired by harness.cli): `add RUN_DIR --dir D` and
`render --dir D --out OUT`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.words import counted
from harness.history import store


def add_history_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="history_command", required=True, metavar="{add,render}")
    add = sub.add_parser("add", help="keep one small JSON of a run in the history directory")
    add.add_argument("run", type=Path, metavar="RUN_DIR", help="run directory or summary.json")
    render_cmd = sub.add_parser("render", help="index.html and PNGs of the history")
    render_cmd.add_argument("--out", type=Path, required=True, metavar="OUT",
                            help="where index.html and the PNGs go")
    for cmd in (add, render_cmd):
        cmd.add_argument("--dir", type=Path, required=True, metavar="DIR",
                         help="the history directory (one JSON per run)")


def run_history(args: argparse.Namespace) -> int:
    """Raises ResultsError on bad input (harness.cli turns that into exit 2)."""
    if args.history_command == "add":
        target, replaced = store.add(args.run, args.dir)
        print(f"{'replaced' if replaced else 'added'} {target}")
        if json.loads(target.read_text())["run"].get("complete") is False:
            print(f"note: {args.run} did not finish normally; the entry holds only its "
                  "finished cells", file=sys.stderr)
    else:
        from harness.history.render import render  # here: matplotlib is slow to import

        entries = store.load(args.dir)
        print(f"{render(entries, args.out)} ({counted(len(entries), 'run')})")
    return 0
