"""The depth scenario's second-queue probe on real brokers and workers: one small depth
cell per backend, planned by the scenario, run by a real driver, analysed as a run does.

RQ lists the second queue first (a priority order), and procrastinate, pgqueuer and
streaq send the probe with a higher priority, so their probes jump the backlog;
redis-raw has no second queue and says so.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from adapters import BACKENDS
from core.protocol import CellSpec, DepthPhase, Workload
from harness.brokers import Brokers
from harness.driver_handle import LocalDriver
from scenarios.base import RunOptions
from scenarios.depth import DEPTH
from scenarios.records import load_records
from tests.conftest import broker_url, require_env

QUEUED = 400  # a backlog RQ's forking workers need seconds to drain


def run_depth_cell(brokers: Brokers, backend: str, tmp_path: Path) -> dict[str, Any]:
    """The quick grid's first depth cell for `backend` with QUEUED jobs; its metrics."""
    plan = DEPTH.plan(backend, RunOptions(quick=True))[0]
    workload = Workload.from_dict(plan.workload)
    phase = workload.phases[0]
    assert isinstance(phase, DepthPhase)
    workload = dataclasses.replace(workload, phases=(dataclasses.replace(
        phase, jobs=QUEUED, warmup_s=0.2, window_s=1.0, time_limit_s=5.0),))
    info = BACKENDS[backend]
    require_env(info.family)
    url = broker_url(brokers, info.broker)
    cell_dir = tmp_path / backend / "0001-depth"  # job ids name their cell: 0001-*
    cell_dir.mkdir(parents=True)
    driver = LocalDriver(info.family, url, tmp_path / backend / "driver.log")
    driver.start([cell_dir])
    try:
        driver.bind(cell_dir, CellSpec(
            index=1, scenario="depth", backend=backend, slots=4, queue=f"qbtestsq{backend[:2]}",
            workload=workload, options=dict(plan.options),
            broker_ctl=brokers.control(info.broker) if info.broker else None))
        driver.wait_exit(timeout_s=plan.timeout_s)
    finally:
        driver.stop()
    report = driver.report(cell_dir)
    assert report is not None and report.error is None, (report, driver.last_output())
    return DEPTH.analyze(plan, load_records(cell_dir / "records"), report)


def assert_jumps_the_backlog(brokers: Brokers, backend: str, mechanism: str, tmp_path: Path,
                             factor: float = 5) -> None:
    """The second probe (named by `mechanism`) starts `factor` times sooner than the
    backlog's probe: relative, as both wait the same on a busy machine."""
    got = run_depth_cell(brokers, backend, tmp_path)
    assert got["queued"] == QUEUED
    assert got["second_queue"].startswith(mechanism), got
    second, first = got["second_probe_latency_s"], got["probe_latency_s"]
    assert second is not None, got
    # the backlog probe waits for the backlog; the second queue's does not
    assert first is None or second < first / factor, got


def test_rq_serves_its_second_queue_first(brokers: Brokers, tmp_path: Path) -> None:
    assert_jumps_the_backlog(brokers, "rq", "rq: queue order", tmp_path)


@pytest.mark.extended  # the same mechanism as pgqueuer's test, another library
def test_procrastinate_fetches_the_higher_priority_first(brokers: Brokers,
                                                        tmp_path: Path) -> None:
    assert_jumps_the_backlog(brokers, "procrastinate", "procrastinate: priority", tmp_path)


def test_pgqueuer_dequeues_the_higher_priority_first(brokers: Brokers, tmp_path: Path) -> None:
    # its probe waits a dequeue round and a status flush on 0.1 s timers, which do not
    # shrink with the backlog's drain on a fast machine (CI saw 0.23 s against 1.1 s)
    assert_jumps_the_backlog(brokers, "pgqueuer", "pgqueuer: priority", tmp_path, factor=2.5)


@pytest.mark.slow
@pytest.mark.extended
def test_streaq_reads_the_high_priority_stream_first(brokers: Brokers, tmp_path: Path) -> None:
    # it waits behind what the worker process that read it had prefetched (its slots'
    # worth, at that one process's pace: 0.7 s seen on a busy machine), not the backlog
    assert_jumps_the_backlog(brokers, "streaq", "streaq: priority", tmp_path, factor=1)


def test_a_backend_without_a_second_queue_says_none(brokers: Brokers, tmp_path: Path) -> None:
    got = run_depth_cell(brokers, "redis-raw", tmp_path)
    assert got["second_queue"] == "none" and got["second_probe_latency_s"] is None
    assert got["probe_reached"] is True


@pytest.mark.slow
@pytest.mark.extended
def test_celery_consumes_its_second_queue_beside_the_backlog(brokers: Brokers,
                                                              tmp_path: Path) -> None:
    got = run_depth_cell(brokers, "celery-redis", tmp_path)
    assert got["second_queue"].startswith("celery: -Q")
    assert got["second_probe_latency_s"] is not None, got
