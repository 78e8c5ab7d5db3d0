"""Holm's step-down against Benjamini-Hochberg's step-up on the committed calibration runs.

    .venv/bin/python results/reference/ci-calibration/corrections.py \\
        results/reference/ci-calibration-speed results/reference/ci-calibration

compare switched from Holm's correction to Benjamini-Hochberg's, per way a row can be
called (docs/ci.md, "The statistics"). For each correction this prints what the default
gate says over the A/A pairs (any row called, either way) and over the injected runs
(the backend's noop row called slower): each backend alone, grafted alone into the A/A
run after the baseline, and all grafted there at once. compare itself only has
Benjamini-Hochberg; Holm's limits are set here in its place.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from calibrate import all_slowed_counts, as_current, fires_for, grafted

from harness.baselines import read_summary
from harness.compare import judge
from harness.compare.judge import NO_CHANGE, Row, compare


def holm(rows: Sequence[Row], alpha: float, _threshold: float) -> None:
    """Holm's limits: the k-th smallest p (from 0) must reach alpha / (m - k); after the
    first that misses, no row is significant (limit 0)."""
    tested = sorted((r for r in rows if r.p is not None), key=lambda r: r.p or 0.0)
    stopped = False
    for k, row in enumerate(tested):
        row.p_limit = 0.0 if stopped else alpha / (len(tested) - k)
        stopped = stopped or (row.p or 0.0) > row.p_limit * (1 + 1e-9)


def report(name: str, correction: Callable[[Sequence[Row], float, float], None],
           folder: Path) -> None:
    judge.benjamini_hochberg = correction  # what compare() calls for the gated rows
    aa = [as_current(read_summary(p)) for p in sorted((folder / "aa").glob("*.json"))]
    injected = {p.stem: as_current(read_summary(p))
                for p in sorted((folder / "injected").glob("*.json")) if p.stem != "delays"}
    pairs = list(itertools.combinations(range(len(aa)), 2))
    alarms = sum(any(r.gated and r.verdict != NO_CHANGE
                     for r in compare(aa[i], aa[j], allow_missing=True).rows)
                 for i, j in pairs)
    print(f"== {name}: A/A pairs with a called row: {alarms}/{len(pairs)}")
    print(f"  noop row called slower against each of {len(aa)} A/A runs: alone, grafted "
          "alone, all grafted at once")
    called, named, failed = all_slowed_counts(aa, injected)
    for backend, slowed in injected.items():
        alone = sum(fires_for(base, slowed, backend, 0.0, False) for base in aa)
        one = sum(fires_for(base, grafted(aa[(i + 1) % len(aa)], slowed, backend), backend,
                            0.0, False) for i, base in enumerate(aa))
        print(f"  {backend:20} {alone}  {one}  {called[backend]}")
    print(f"  all grafted at once: backends named per baseline {named}; the gate failed "
          f"against {failed}/{len(aa)}")


if __name__ == "__main__":
    bh = judge.benjamini_hochberg
    for folder in map(Path, sys.argv[1:]):
        print(f"# {folder}")
        report("Holm", holm, folder)
        report("Benjamini-Hochberg", bh, folder)
