"""The self-test's timing of a raw ceiling's per-job path, warm and after a wait."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

from core.envnames import GATE_ENV, RECORDS_DIR_ENV
from core.recorder import NOOP_RUN, RECORD
from harness import job_path


def test_the_job_path_costs_more_than_decoding() -> None:
    costs = job_path.job_path_us()  # a process of its own, as in the self-test
    assert set(costs) == {"warm", "after_wait", "batch"}
    for mode in ("warm", "after_wait"):
        assert set(costs[mode]) == {"json_loads", "run_batch"}
    # run_batch decodes too, then passes the gate and counts the job
    assert costs["warm"]["run_batch"] > costs["warm"]["json_loads"] > 0
    batch = costs["batch"]
    assert batch["size"] == job_path.BATCH
    assert min(batch["json_loads"], batch["bare"], batch["recorded"]) > 0


def test_the_job_is_counted_in_bare_mode_and_the_environment_restored(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The one-message path is timed as the ceiling check runs it: an open gate in bare
    mode, so each job bumps the cell's count. The batch is timed in both modes, and a
    recorded batch is one NOOP_RUN record of all its jobs."""
    monkeypatch.delenv(GATE_ENV, raising=False)
    monkeypatch.setenv(RECORDS_DIR_ENV, "/somewhere/else")
    seen: list[str] = []
    runs: list[tuple[int, ...]] = []
    real = job_path.bare_cell

    def spying():
        with real() as cell_dir:
            yield cell_dir
            root = Path(os.environ[RECORDS_DIR_ENV])
            seen.extend(path.name for path in root.glob("*/*"))
            for file in root.glob("*/records/*.bin"):
                runs.extend(RECORD.iter_unpack(file.read_bytes()))

    monkeypatch.setattr(job_path, "bare_cell", contextmanager(spying))
    monkeypatch.setattr(job_path, "CALLS", 10)
    monkeypatch.setattr(job_path, "REPEATS", 1)
    monkeypatch.setattr(job_path, "BATCH_CALLS", 4)
    monkeypatch.setattr(job_path, "BATCH_REPEATS", 2)
    job_path.measure()
    assert "counts" in seen and "records" in seen
    # job_id, event, length: 2 rounds x 4 recorded calls, each one run of the whole batch
    assert [run[:3] for run in runs] == [(job_path.JOB, NOOP_RUN, job_path.BATCH)] * 8
    assert GATE_ENV not in os.environ and os.environ[RECORDS_DIR_ENV] == "/somewhere/else"


def test_a_timing_that_fails_is_none_with_its_reason(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    monkeypatch.setattr(job_path.sys, "executable", "false")  # exits 1, prints nothing
    assert job_path.job_path_us() is None
    assert "ceiling per-job path not timed: exit status 1" in capsys.readouterr().err
