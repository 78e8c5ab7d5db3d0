"""The self-test's timing of a raw ceiling's per-job path, warm and after a wait."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

from core.envnames import GATE_ENV, RECORDS_DIR_ENV
from harness import job_path


def test_the_job_path_costs_more_than_decoding() -> None:
    costs = job_path.job_path_us()  # a process of its own, as in the self-test
    assert set(costs) == {"warm", "after_wait"}
    for times in costs.values():
        assert set(times) == {"json_loads", "run_batch"}
    # run_batch decodes too, then passes the gate and counts the job
    assert costs["warm"]["run_batch"] > costs["warm"]["json_loads"] > 0


def test_the_job_is_counted_in_bare_mode_and_the_environment_restored(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The timed path is the ceiling check's: an open gate in bare mode, so each job
    bumps the cell's count and writes no record."""
    monkeypatch.delenv(GATE_ENV, raising=False)
    monkeypatch.setenv(RECORDS_DIR_ENV, "/somewhere/else")
    seen: list[str] = []
    real = job_path.bare_cell

    def spying():
        with real():
            yield
            root = Path(os.environ[RECORDS_DIR_ENV])
            seen.extend(path.name for path in root.glob("*/*"))

    monkeypatch.setattr(job_path, "bare_cell", contextmanager(spying))
    monkeypatch.setattr(job_path, "CALLS", 10)
    monkeypatch.setattr(job_path, "REPEATS", 1)
    job_path.measure()
    assert "counts" in seen and "records" not in seen
    assert GATE_ENV not in os.environ and os.environ[RECORDS_DIR_ENV] == "/somewhere/else"


def test_a_timing_that_fails_is_none_with_its_reason(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    monkeypatch.setattr(job_path.sys, "executable", "false")  # exits 1, prints nothing
    assert job_path.job_path_us() is None
    assert "ceiling per-job path not timed: exit status 1" in capsys.readouterr().err
