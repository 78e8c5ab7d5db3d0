"""What `run` checks of its input before anything starts: payloads a broker refuses, a
plan with nothing to run, options no chosen scenario reads, jobs no window can hold, an
output folder in use. A refusal is a UsageError or ResultsError (one line, exit 2); the
rest are notes on stderr."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from adapters import BACKENDS
from core.brokers import broker_kind
from core.results import CLAIM_FILE, ResultsError, make_dir
from harness.argparsing import UsageError
from scenarios import SCENARIOS
from scenarios.base import RunOptions
from scenarios.throughput import window_of

MAX_SAME_NAME = 50

ENVELOPE_ROOM = 64 * 1024  # of a broker's message limit, left for the framework's envelope


def check_payload_limits(sizes: Sequence[int], backends: Sequence[str]) -> None:
    """Refuse payloads a chosen backend's broker would reject (one clear line)."""
    for backend in backends:
        broker = BACKENDS[backend].broker
        if broker is None:
            continue
        limit = broker_kind(broker).message_limit
        too_big = [s for s in sizes if s > limit - ENVELOPE_ROOM]
        if too_big:
            raise UsageError(
                f"payload of {too_big[0]:,} bytes is larger than {backend}'s broker accepts "
                f"(about {(limit - ENVELOPE_ROOM):,} bytes per message)")


def say_not_planned(scenarios: list[str], backends: list[str]) -> None:
    """Name each chosen (scenario, backend) pair the scenario gives no cell, and why; a
    run left with nothing to run is bad input."""
    skipped = [(name, backend, why) for name in scenarios for backend in backends
               if (why := SCENARIOS[name].not_planned(backend))]
    if len(skipped) == len(scenarios) * len(backends):
        raise UsageError("nothing to run: " + "; ".join(
            f"{name} has no cell for {backend} ({why})" for name, backend, why in skipped))
    for name, backend, why in skipped:
        print(f"not run: {name} for {backend}: {why}", file=sys.stderr)


# The grid options of `run` and the RunOptions field each sets (Scenario.reads_options).
GRID_FLAGS = {"durations_ms": "--durations", "rates": "--rates",
              "payload_sizes": "--payload-sizes", "memory_jobs": "--memory-jobs",
              "slots_sweep": "--slots-sweep"}


def say_unused_options(scenarios: list[str], options: RunOptions) -> None:
    """Name each grid option given that none of the chosen scenarios reads: the run would
    otherwise record it in its config as if it had shaped a cell."""
    for field, flag in GRID_FLAGS.items():
        readers = [s.name for s in SCENARIOS.values() if field in s.reads_options]
        if getattr(options, field) and not set(readers) & set(scenarios):
            print(f"note: {flag} is read by {' and '.join(readers)} only, not in this run's "
                  f"scenarios ({', '.join(scenarios)}); it changes nothing", file=sys.stderr)


def say_durations_too_long(scenarios: list[str], options: RunOptions) -> None:
    """Warn of throughput jobs longer than the counted window: none of them can end in it,
    so their cells fail (as a hung job's would; the tests use one)."""
    window = window_of(options)
    too_long = [d for d in options.durations_ms or () if d / 1000 > window]
    if "throughput" in scenarios and too_long:
        print(f"note: --durations {','.join(f'{d:g}' for d in too_long)}: longer than the "
              f"{window:g} s steady-state window, so no such job can end inside it and "
              f"those cells will fail; give a longer --window", file=sys.stderr)


def fresh_out(out: Path) -> Path:
    """`out`, claimed for this run, if a run may write there: absent or an empty folder.
    Workers find a cell's folder by its number alone, so cells of another run in the same
    folder would take the records of this run's cells with the same numbers. The claim
    is CLAIM_FILE, created exclusively, which the run's writer removes once run.json
    and summary.json are there: of two runs started together on one folder, the second
    is refused."""
    if out.exists() and not out.is_dir():
        raise ResultsError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        raise ResultsError(f"--out {out} is not empty; give a new folder (or remove this one)")
    make_dir(out)
    claim = out / CLAIM_FILE
    try:
        os.close(os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        raise ResultsError(f"--out {out} is in use by another run") from None
    if any(entry.name != CLAIM_FILE for entry in out.iterdir()):  # a run got there first
        claim.unlink(missing_ok=True)
        raise ResultsError(f"--out {out} is in use by another run")
    return out


def unclaim(out: Path) -> None:
    """Give back a folder fresh_out claimed for a run that then never started."""
    (out / CLAIM_FILE).unlink(missing_ok=True)
    try:
        out.rmdir()
    except OSError:  # not empty after all: leave it
        pass


def fresh_default_out(first: Path) -> Path:
    """`first` claimed as by fresh_out, or `first`-2, -3...: runs started in the same
    second (their default folders are named by it) each get a folder of their own."""
    for count in range(1, MAX_SAME_NAME + 1):
        candidate = first if count == 1 else first.with_name(f"{first.name}-{count}")
        try:
            return fresh_out(candidate)
        except ResultsError:
            continue
    raise ResultsError(f"{first}: {MAX_SAME_NAME} runs of that name already; give --out")
