"""A group of cells in one driver process: one adapter, cells in order, driver.json each."""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
import traceback
from pathlib import Path

from core import interrupts
from core.envnames import BROKER_URL_ENV
from core.protocol import CellSpec
from core.words import clipped
from harness.driver.cell import CellRun
from harness.driver.phases import run_phases
from harness.driver.workers import WorkerSet

BIND_TIMEOUT_S = 600.0  # the coordinator binds the next cell within moments
# driver.json keeps an error's head and tail: a library's message may quote the payload
ERROR_CHARS, TRACEBACK_CHARS = 2_000, 20_000


def read_cell(path: Path, timeout_s: float = BIND_TIMEOUT_S) -> CellSpec:
    """A cell's spec, once the coordinator has bound it (written after the cells before
    it ended, as its parameters may depend on their results)."""
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} was not written within {timeout_s:.0f}s")
        time.sleep(0.01)
    cell = CellSpec.from_json(path.read_text(), str(path))
    url = os.environ.get(BROKER_URL_ENV)
    if url:  # the real URL (with its password) never touches the disk
        cell = dataclasses.replace(cell, broker_url=url)
    return cell


def run_group(cell_files: list[Path]) -> int:
    """Run every cell in order with one adapter; driver.json per cell as it ends."""
    first_dir = cell_files[0].parent
    workers = WorkerSet(read_cell(cell_files[0]), first_dir.parent,
                        first_dir.parent.parent / "logs" / first_dir.name)
    code = 0
    try:
        for path in cell_files:
            cell, cell_dir = read_cell(path), path.parent
            if cell.skip:  # the coordinator answered it without a run
                continue
            run = CellRun(cell, cell_dir, workers)
            report = run.report
            try:
                run_phases(run)
            except interrupts.Interrupted as exc:
                report.error = f"interrupted by {exc}"
                code = 130
            except Exception as exc:  # noqa: BLE001 - reported to the coordinator
                report.error = clipped(f"{type(exc).__name__}: {exc}".strip(), ERROR_CHARS)
                report.traceback = clipped(traceback.format_exc(), TRACEBACK_CHARS)
                workers.stop()  # unknown state: the next cell starts fresh workers
            if code == 0:
                run.settle()
            report.pid = os.getpid()
            report.write(cell_dir)
            if code:
                break
    finally:
        workers.close()
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="harness.driver")
    parser.add_argument("cells", nargs="+", type=Path, help="cell.json files, run in order")
    args = parser.parse_args(argv)
    try:
        with interrupts.handled():
            return run_group(args.cells)
    except interrupts.Interrupted:
        return 130
