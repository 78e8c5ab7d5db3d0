"""The observer effect: bare jobs only count themselves; the harness's own cost stays bounded."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from adapters import job
from core import jobcount, recorder
from core.envnames import BARE_ENV, RECORDS_DIR_ENV
from core.jobcount import COUNTS_DIR, JobCounter, read_counts
from core.recorder import Recorder
from harness.driver.tally import JobTally
from reports import render
from scenarios.records import load_records
from tests.test_report import run_info, text_of, throughput_cells, write_run

LOOSE_BOUND = 0.15  # CI notices a regression of the harness, not machine noise


@pytest.fixture
def cell_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "0003-throughput-x"
    (folder / "records").mkdir(parents=True)
    monkeypatch.setenv(RECORDS_DIR_ENV, str(tmp_path))
    for module, cache in ((recorder, "_cell_dirs"), (recorder, "_recorders"),
                          (jobcount, "_counters")):
        monkeypatch.setattr(module, cache, {})  # each test's own cell folder
    return folder


def test_bare_jobs_write_no_records_and_are_counted(cell_dir: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BARE_ENV, "1")
    for n in range(5):
        job.bench_job(3 * recorder.ID_SPAN + n, 0, {"kind": "noop"})
    with pytest.raises(job.InjectedFailure):
        job.bench_job(3 * recorder.ID_SPAN + 9, 0, {"kind": "fail"})
    assert list((cell_dir / "records").iterdir()) == []
    count, latest = read_counts(cell_dir / COUNTS_DIR)
    assert count == 6 and latest is not None
    assert JobTally(cell_dir / "records").refresh() == 6


def test_instrumented_jobs_keep_their_records(cell_dir: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BARE_ENV, raising=False)
    job.bench_job(3 * recorder.ID_SPAN + 1, 0, {"kind": "noop"})
    assert not (cell_dir / COUNTS_DIR).exists()
    assert len(load_records(cell_dir / "records")) == 2
    assert JobTally(cell_dir / "records").refresh() == 1


def _in_child(work: Any) -> int:
    """Run `work` in a forked child; the child's pid once it exited cleanly."""
    pid = os.fork()
    if pid == 0:
        try:
            work()
        finally:
            os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
    return pid


def test_forked_child_records_its_own_pid(tmp_path: Path) -> None:
    rec = Recorder(tmp_path)
    child = _in_child(lambda: rec.record(1, recorder.Event.START))
    assert recorder.current_pid() == os.getpid()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{child}.bin"]
    assert set(load_records(tmp_path).pid) == {child}


def test_shared_files_collect_every_child(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """RQ's work horses: one file (the worker's), records with each horse's pid, one count."""
    monkeypatch.setattr(recorder, "_file_owner", None)
    recorder.share_files_with_forks()
    rec, counter = Recorder(tmp_path / "records"), JobCounter(tmp_path / COUNTS_DIR)
    children = [_in_child(lambda: (rec.record(1, recorder.Event.END), counter.add()))
                for _ in range(3)]
    assert [p.name for p in (tmp_path / "records").iterdir()] == [f"{os.getpid()}.bin"]
    assert sorted(load_records(tmp_path / "records").pid) == sorted(children)
    assert read_counts(tmp_path / COUNTS_DIR)[0] == 3


def test_report_shows_the_observer_effect(tmp_path: Path) -> None:
    cells = throughput_cells("redis-raw", 1) + throughput_cells("rq", 1)
    run_dir = write_run(tmp_path / "run", cells, run_info(len(cells)))
    (run_dir / "observer.json").write_text(
        '{"date": "2026-12-01T11:00:00+00:00", "repeats": 3, "drain_s": 2.0, "backends": {'
        '"rq": {"status": "ok", "effect": 0.031, "limit": 0.05, "passed": true},'
        '"redis-raw": {"status": "ok", "effect": 0.12, "limit": 0.1, "passed": false}}}')
    text = text_of((render(run_dir)).read_text())
    assert "Observer effect of the harness" in text
    assert "2026-12-01T11:00:00+00:00" in text
    assert "rq +3.1%" in text and "redis-raw +12.0% (above goal)" in text


@pytest.mark.slow
def test_the_harness_costs_a_library_backend_little(tmp_path: Path) -> None:
    """Instrumented vs bare drains of one library backend, ABBA over 3 repeats: the
    harness's recording stays within a loose bound (the goal, 5%, is the self-test's)."""
    from harness.observer import ObserverMeasurement, ObserverSettings
    from harness.runner import RunConfig, Runner
    from scenarios.base import RunOptions

    # dramatiq-redis: a library whose workers start in about a second (celery's take several)
    runner = Runner(RunConfig(scenarios=[], backends=["dramatiq-redis"], rounds=1,
                              out=tmp_path / "observer", options=RunOptions(quick=True)))
    try:
        row = ObserverMeasurement(runner, ObserverSettings(repeats=3, drain_s=1.5)).measure(
            "dramatiq-redis")
    finally:
        runner.brokers.stop_all()
    assert row["status"] == "ok", row
    assert row["effect"] <= LOOSE_BOUND, row
