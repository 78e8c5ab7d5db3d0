"""Repeat one crash-recovery cell N times and tabulate lost / duplicated per try.

A benchmark for rare crash outcomes (issue 14: an amqp-raw durable
broker-kill cell once lost 16 of 32 jobs in five tries), not a test:

    .venv/bin/python -m harness.crash_repeat --tries 30
    .venv/bin/python -m harness.crash_repeat --backend celery-rabbitmq --tries 10

It picks the cell from the crash scenario's full grid by fault and
persistence (default: amqp-raw, broker-kill, durable) and hands it to the
ordinary runner once per try, as round 1..N: one run, one pool broker
(RabbitMQ is started once and killed and restarted by each try). Every
try keeps its cell directory (records, driver and worker logs); a try that
lost jobs or failed also gets a copy of the broker logs as they stood when
it ended (`broker-logs/`), because the runner deletes the brokers' data
directories at the end of the run. The table goes to stdout and to `tries.md`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from adapters import BACKENDS
from adapters.base import FAULTS, PROFILES
from core.results import ResultsError
from harness.run_checks import fresh_default_out, fresh_out
from harness.runner import RunConfig, Runner, default_run_dir
from scenarios import SCENARIOS
from scenarios.base import CellPlan, RunOptions

SCENARIO = "crash-recovery"
COLUMNS = ("lost", "late", "duplicated", "once", "ended_before_kill", "in_flight_at_kill",
           "lost_never_started", "workers_replaced", "window_s")


def pick_cell(backend: str, fault: str, persistence: str | None, slots: int,
              mode: str = "reliable") -> CellPlan:
    """The one cell of the full crash grid with these parameters (ValueError if none)."""
    options = RunOptions(slots=slots, profile="reliable", profiles=("reliable",))
    cells = [c for c in SCENARIOS[SCENARIO].plan(backend, options)
             if c.params["fault"] == fault and c.params["persistence"] == persistence
             and c.params["mode"] == mode]
    if len(cells) != 1:
        raise ValueError(f"{backend} has {len(cells)} crash cells with fault={fault} "
                         f"persistence={persistence} mode={mode}; expected one")
    return cells[0]


class RepeatRunner(Runner):
    """The runner with a plan of one cell repeated, saving the broker logs of a try that
    lost jobs or failed."""

    def __init__(self, config: RunConfig, cell: CellPlan, tries: int) -> None:
        super().__init__(config)
        self.cell = cell
        self.tries = tries

    def plan(self) -> list[tuple[int, CellPlan]]:
        return [(n, replace(self.cell)) for n in range(1, self.tries + 1)]

    def run_group(self, round_no: int, cells: list[CellPlan]) -> Iterator[dict[str, Any]]:
        for result in super().run_group(round_no, cells):
            lossy = result["status"] == "failed" or result.get("metrics", {}).get("lost")
            if lossy and result.get("cell_dir"):
                self.save_broker_logs(self.config.out / result["cell_dir"])
            yield result

    def save_broker_logs(self, cell_dir: Path) -> None:
        """Copy every broker's log files (pool and dedicated servers) into the cell."""
        for log in self.broker_dir.rglob("*.log"):
            target = cell_dir / "broker-logs" / log.relative_to(self.broker_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log, target)


def table(cells: list[dict[str, Any]]) -> str:
    """A markdown table: one row per try, then the tries that lost or duplicated jobs."""
    lines = ["| try | status | " + " | ".join(COLUMNS) + " | cell |",
             "| --- " * (len(COLUMNS) + 3) + "|"]
    for cell in cells:
        metrics = cell.get("metrics", {})
        values = [str(metrics.get(name, "-")) for name in COLUMNS]
        status = cell["status"] if cell["status"] == "ok" else f"{cell['status']}: {cell['reason']}"
        lines.append(f"| {cell['round']} | {status} | " + " | ".join(values)
                     + f" | {cell.get('cell_dir', '-')} |")
    ok = [c["metrics"] for c in cells if c["status"] == "ok"]
    lines += ["", f"{len(ok)} of {len(cells)} tries ran; "
              f"{sum(m['lost'] > 0 for m in ok)} lost jobs "
              f"({sum(m['lost'] for m in ok)} in all), "
              f"{sum(m['duplicated'] > 0 for m in ok)} ran jobs twice "
              f"({sum(m['duplicated'] for m in ok)} in all)"]
    return "\n".join(lines) + "\n"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m harness.crash_repeat",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=30)
    parser.add_argument("--backend", default="amqp-raw", choices=sorted(BACKENDS))
    parser.add_argument("--fault", default="broker-kill", choices=FAULTS)
    parser.add_argument("--mode", default="reliable", choices=PROFILES[:2],
                        help="the profile of a worker-fault cell (a broker kill runs in the "
                             "reliable one)")
    parser.add_argument("--persistence", default="durable",
                        help="the broker-kill persistence setting; 'none' for a worker fault")
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--out", type=Path, help="run directory (default results/<run-id>)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    persistence = None if args.persistence == "none" else args.persistence
    try:
        cell = pick_cell(args.backend, args.fault, persistence, args.slots, args.mode)
    except ValueError as exc:
        print(f"python -m harness.crash_repeat: error: {exc}", file=sys.stderr)
        return 2
    try:
        out = (fresh_out(args.out.resolve()) if args.out else
               fresh_default_out(default_run_dir().resolve()))
    except ResultsError as exc:
        print(f"python -m harness.crash_repeat: error: {exc}", file=sys.stderr)
        return 2
    config = RunConfig(scenarios=[SCENARIO], backends=[args.backend], rounds=args.tries,
                       out=out, options=RunOptions(slots=args.slots, profile=cell.profile,
                                                   profiles=(cell.profile,)))
    outcome = RepeatRunner(config, cell, args.tries).run()
    text = table(outcome["cells"])
    (out / "tries.md").write_text(text)
    print(text + f"\n{out}")
    return 130 if outcome["interrupted"] else 0


if __name__ == "__main__":
    sys.exit(main())
