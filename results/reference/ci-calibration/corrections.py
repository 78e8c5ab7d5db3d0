"""Holm's step-down against Benjamini-Hochberg's step-up on the committed calibration runs.

    .venv/bin/python results/reference/ci-calibration/corrections.py \
        results/reference/ci-calibration-speed results/reference/ci-calibration

compare switched from Holm's correction to Benjamini-Hochberg's (docs/ci.md, "The
statistics"). For each correction this prints what the default gate says over the
A/A pairs (any row called, either way) and over the injected runs: each backend alone,
grafted alone into the A/A run after the baseline, and all grafted there at once.
compare itself only has Benjamini-Hochberg; Holm's limits are set here in its place.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from calibrate import as_current, grafted

from harness.baselines import read_summary
from harness.compare import judge
from harness.compare.judge import NO_CHANGE, Row, compare


def holm(rows: Sequence[Row], alpha: float) -> None:
    """Holm's limits: the k-th smallest p (from 0) must reach alpha / (m - k); after the
    first that misses, no row is significant (limit 0)."""
    tested = sorted((r for r in rows if r.p is not None), key=lambda r: r.p or 0.0)
    stopped = False
    for k, row in enumerate(tested):
        row.p_limit = 0.0 if stopped else alpha / (len(tested) - k)
        stopped = stopped or (row.p or 0.0) > row.p_limit * (1 + 1e-9)


def called(base: dict, cur: dict, backend: str) -> bool:
    return any(r.regressed for r in compare(base, cur, allow_missing=True).rows
               if r.key[1] == backend)


def report(name: str, correction: Callable[[Sequence[Row], float], None], folder: Path
           ) -> None:
    judge.benjamini_hochberg = correction  # what compare() calls for the gated rows
    aa = [as_current(read_summary(p)) for p in sorted((folder / "aa").glob("*.json"))]
    injected = {p.stem: as_current(read_summary(p))
                for p in sorted((folder / "injected").glob("*.json")) if p.stem != "delays"}
    pairs = list(itertools.combinations(range(len(aa)), 2))
    alarms = sum(any(r.gated and r.verdict != NO_CHANGE
                     for r in compare(aa[i], aa[j], allow_missing=True).rows)
                 for i, j in pairs)
    print(f"== {name}: A/A pairs with a called row: {alarms}/{len(pairs)}")
    hosts = [aa[(i + 1) % len(aa)] for i in range(len(aa))]
    together = []
    for host in hosts:
        for backend, slowed in injected.items():
            host = grafted(host, slowed, backend)
        together.append(host)
    print(f"  called slower against each of {len(aa)} A/A runs: alone, grafted alone, "
          "all grafted at once")
    for backend, slowed in injected.items():
        alone = sum(called(base, slowed, backend) for base in aa)
        one = sum(called(base, grafted(hosts[i], slowed, backend), backend)
                  for i, base in enumerate(aa))
        every = sum(called(base, together[i], backend) for i, base in enumerate(aa))
        print(f"  {backend:20} {alone}  {one}  {every}")
    failed = sum(any(r.regressed for r in compare(base, together[i], allow_missing=True).rows)
                 for i, base in enumerate(aa))
    print(f"  all grafted at once: the gate failed against {failed}/{len(aa)}")


if __name__ == "__main__":
    bh = judge.benjamini_hochberg
    for folder in map(Path, sys.argv[1:]):
        print(f"# {folder}")
        report("Holm", holm, folder)
        report("Benjamini-Hochberg", bh, folder)
