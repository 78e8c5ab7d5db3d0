"""The self-test's ceiling check on known drains: the ratio per probe loop is shown
beside the plain ratio when the speed meter timed every drain; the verdict stays on
the plain one (the two sides load the cores differently)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness import ceiling_check
from harness.speed import SAMPLE_DTYPE, SpeedMeter

SLOW_FROM = 1_000  # the machine ran 1.25x slower from this time on (ns)


def meter_with_samples(tmp_path: Path) -> SpeedMeter:
    meter = SpeedMeter(tmp_path)
    meter.cpus = [0]
    samples = [(t, 400_000 if t < SLOW_FROM else 500_000) for t in range(0, 2_000, 10)]
    meter.file(0).write_bytes(np.array(samples, dtype=SAMPLE_DTYPE).tobytes())
    return meter


CellRunner = Callable[[int, Any], dict[str, Any]]


@pytest.fixture
def run_cell(monkeypatch: pytest.MonkeyPatch) -> CellRunner:
    """Ceiling drains in the slow stretch at 800 jobs/s, bare loops in the fast one at
    1,000/s: the same work per probe loop."""
    windows = iter([(1_000, 1_200), (1_200, 1_400), (1_400, 1_600), (1_600, 1_800)])
    bare_windows = iter([(0, 200), (200, 400), (400, 600), (600, 800)])
    monkeypatch.setattr(ceiling_check, "sweep", lambda *_args: {"2": 900.0})
    monkeypatch.setattr(ceiling_check, "ceilings_by_broker", lambda: {"redis": "redis-raw"})

    def bare(*_args: Any) -> dict[str, float]:
        start, end = next(bare_windows)
        return {"jobs_per_s": 1000.0, "start_ns": start, "end_ns": end}

    monkeypatch.setattr(ceiling_check, "bare_drain", bare)

    def ceiling_drain(_round: int, _cell: Any) -> dict[str, Any]:
        return {"status": "ok", "metrics": {"jobs_per_s": 800.0, "drain_ns": list(next(windows))}}

    return ceiling_drain


def check(run_cell: CellRunner, meter: SpeedMeter | None) -> dict[str, Any]:
    return ceiling_check.check_ceiling(run_cell, lambda *_a, **_k: None, "redis", "redis://x",
                                       meter=meter)


def test_each_drain_is_also_shown_per_probe_loop(run_cell: CellRunner, tmp_path: Path) -> None:
    row = check(run_cell, meter_with_samples(tmp_path))
    assert row["ratio"] == pytest.approx(0.8)
    assert row["ratio_per_loop"] == pytest.approx(1.0)
    assert row["ceiling_probe_us"] == [500.0] * 2 and row["bare_probe_us"] == [400.0] * 2
    assert row["passed"] is False  # judged on the plain ratio


def test_without_the_meter_there_is_no_ratio_per_loop(run_cell: CellRunner) -> None:
    row = check(run_cell, None)
    assert row["ratio_per_loop"] is None and row["ceiling_probe_us"] == [None] * 2
    assert row["ratio"] == pytest.approx(0.8) and row["passed"] is False
