"""Round noise learned from earlier runs (`compare --noise DIR`).

Three rounds a side leave a Welch test 2 to 4 degrees of freedom, so on its own a
comparison can only call large drops. The spread of a row's rounds is a property of
the backend and the machine, not of one run, so earlier runs of the same kind (the
history of main, repeated A/A runs) can lend it theirs:

- within: the rounds' deviations from their own run's mean, pooled over the runs (and
  over both compared runs): a change between commits does not inflate it;
- between: how much the runs' means scatter beyond what `within` explains, the drift
  of one whole run against another. It is zero on a quiet machine and keeps the test
  honest where whole runs drift (it also absorbs real changes between the learned
  commits, which only makes the test stricter).

The test is then a t-test of the two runs' log means with standard error
sqrt(within * (1/n_base + 1/n_cur) + 2 * between) and Satterthwaite's degrees of
freedom. docs/ci.md gives the calibration.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.results import ResultsError
from core.words import counted
from harness.baselines import config_of, read_summary, run_of
from harness.compare.table import Key


@dataclass(frozen=True)
class Noise:
    """The learned spread of one row's log rounds."""

    squares: float  # sum of squared deviations from each run's own mean
    freedom: int  # rounds minus runs
    runs: int
    between: float  # variance of a run's mean beyond what `within` explains

    @property
    def within(self) -> float:
        return self.squares / self.freedom if self.freedom else 0.0

    def with_rounds(self, *samples: Sequence[float]) -> Noise:
        """This noise pooled with the log rounds of more runs (the compared ones)."""
        squares, freedom = self.squares, self.freedom
        for logs in samples:
            if len(logs) > 1:
                mean = statistics.fmean(logs)
                squares += sum((v - mean) ** 2 for v in logs)
                freedom += len(logs) - 1
        return Noise(squares, freedom, self.runs, self.between)

    def standard_error(self, sizes: tuple[int, int]) -> float:
        return math.sqrt(self.within * sum(1 / n for n in sizes) + 2 * self.between)

    def freedom_for(self, sizes: tuple[int, int]) -> float:
        """Satterthwaite's degrees of freedom of the standard error's two parts."""
        parts = ((self.within * sum(1 / n for n in sizes), self.freedom),
                 (2 * self.between, max(1, self.runs - 1)))
        total = sum(part for part, _ in parts)
        spread = sum(part * part / dof for part, dof in parts if part > 0)
        return total * total / spread if spread > 0 else float(self.freedom)


RowKey = tuple[Key, str, str]  # case, metric, basis ("absolute", "per loop", "/<ceiling>")
NoiseModel = dict[RowKey, Noise]
MIN_RUNS = 3  # the drift between runs needs the means of three


def positive_logs(values: Iterable[float]) -> list[float] | None:
    values = list(values)
    return [math.log(v) for v in values] if values and min(values) > 0 else None


def learn(runs: Sequence[dict[str, Any]], basis_values: Any) -> NoiseModel:
    """Each row's noise over `runs` (summaries). `basis_values(summary)` gives
    {(key, metric, basis): rounds} on the basis the gate judges (judge.basis_rounds)."""
    per_row: dict[RowKey, list[list[float]]] = {}
    for summary in runs:
        for row, rounds in basis_values(summary).items():
            logs = positive_logs(rounds)
            if logs and len(logs) > 1:
                per_row.setdefault(row, []).append(logs)
    model: NoiseModel = {}
    for row, samples in per_row.items():
        pooled = Noise(0.0, 0, len(samples), 0.0).with_rounds(*samples)
        between = 0.0
        if len(samples) >= MIN_RUNS:
            means = [statistics.fmean(s) for s in samples]
            size = statistics.fmean(len(s) for s in samples)
            between = max(0.0, statistics.variance(means) - pooled.within / size)
        model[row] = Noise(pooled.squares, pooled.freedom, len(samples), between)
    return model


def run_identity(summary: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(id, start, commit) of a run: the same in its summary.json and its history entry."""
    run = run_of(summary)
    return run.get("id"), run.get("started"), run.get("git_revision")


def read_runs(folder: Path, compared: Sequence[dict[str, Any]] = ()
              ) -> tuple[list[dict[str, Any]], list[str]]:
    """Every run summary in `folder` (history entries, *.json, or run directories) but
    the `compared` runs themselves, whose rounds the test has already, and runs slowed
    by the test knob; and a note on each kind left out."""
    if not folder.is_dir():
        raise ResultsError(f"--noise {folder}: not a directory of runs")
    found = sorted(folder.glob("*.json")) + sorted(p for p in folder.iterdir()
                                                   if (p / "summary.json").is_file())
    unique = {path.resolve(): path for path in found}  # a `latest` link is no second run
    runs, unreadable = [], []
    for path in unique.values():
        try:
            runs.append(read_summary(path))
        except ResultsError as exc:  # another file in the folder (a script's notes)
            unreadable.append(f"{path.name} ({exc})")
    own = {run_identity(summary) for summary in compared}
    kept = [s for s in runs if run_identity(s) not in own and not config_of(s).get(
        "inject_delay_us")]
    notes = [f"--noise {folder}: left out {name}: not a run summary" for name in unreadable]
    if same := sum(run_identity(s) in own for s in runs):
        notes.append(f"{counted(same, 'run')} of --noise {folder} left out: the baseline or "
                     "current run itself")
    if slowed := sum(bool(config_of(s).get("inject_delay_us")) for s in runs):
        notes.append(f"{counted(slowed, 'run')} of --noise {folder} left out: slowed by "
                     "--inject-delay-us")
    if len(kept) < MIN_RUNS:
        raise ResultsError(f"--noise {folder}: {counted(len(kept), 'other run')} found, at "
                           f"least {MIN_RUNS} needed (history entries or run directories)")
    return kept, notes


def freedom_summary(model: NoiseModel, rows: Iterable[RowKey]) -> str:
    used = [model[r] for r in rows if r in model]
    if not used:
        return "no gated row has rounds there"
    low, high = min(n.freedom for n in used), max(n.freedom for n in used)
    span = f"{low}" if low == high else f"{low}-{high}"
    drifting = sum(n.between > 0 for n in used)
    return (f"{counted(len(used), 'gated row')} learned, {span} degrees of freedom each; "
            f"{drifting} with a run-to-run drift")

