"""Crash recovery end to end: real workers, real brokers started by the harness.

Each test runs one crash-recovery cell through the Runner (the coordinator's
own code path: driver subprocess, fault protocol, analysis).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters import BACKENDS
from harness.runner import RunConfig, Runner
from scenarios.base import CellPlan, RunOptions
from scenarios.crash import CRASH_RECOVERY
from tests.conftest import REPO, require_env

pytestmark = pytest.mark.slow
OPTIONS = RunOptions()  # the full plan: quick runs only one job-process-kill per backend


def crash_cell(backend: str, mode: str, fault: str = "job-process-kill",
               persistence: str | None = None) -> CellPlan:
    for cell in CRASH_RECOVERY.plan(backend, OPTIONS):
        if (cell.params["mode"], cell.params["fault"],
                cell.params["persistence"]) == (mode, fault, persistence):
            return cell
    raise LookupError(f"no {fault} {mode} {persistence} cell planned for {backend}")


def run_cell(cell: CellPlan, tmp_path: Path) -> dict[str, Any]:
    config = RunConfig(scenarios=[CRASH_RECOVERY.name], backends=[cell.backend], rounds=1,
                       out=tmp_path / "run", options=OPTIONS)
    runner = Runner(config)
    try:
        result = runner.run_cell(1, cell)
    finally:
        runner.stop_brokers()
    assert result["status"] == "ok", result["reason"]
    metrics = result["metrics"]
    assert (metrics["lost"] + metrics["late"] + metrics["once"] + metrics["duplicated"]
            == metrics["jobs"]), metrics
    if cell.params["fault"] != "broker-kill":
        # the kill landed on a process running a job: its START, no END before the kill
        assert metrics["in_flight_on_killed"] >= 1, metrics["explanation"]
        # the supervisor gives back the slots that died, never more; asyncio's jobs lived
        # only in the killed process, so there is nothing a replacement could run
        capacity = metrics["capacity"]
        assert capacity["after"] <= capacity["before"], metrics
        if BACKENDS[cell.backend].broker is not None:
            assert capacity["after"] == capacity["before"], metrics
    return result


@pytest.mark.extended
def test_asyncio_loses_the_jobs_of_its_killed_process(tmp_path):
    metrics = run_cell(crash_cell("asyncio", "default"), tmp_path)["metrics"]
    assert metrics["lost"] > 0
    assert metrics["completed"] + metrics["lost"] == metrics["jobs"]
    assert "memory" in metrics["explanation"]


def test_redis_raw_reliable_loses_nothing_on_job_process_kill(tmp_path):
    require_env("redis")
    result = run_cell(crash_cell("redis-raw", "reliable"), tmp_path)
    assert result["metrics"]["lost"] == 0, result["metrics"]["explanation"]


@pytest.mark.extended
def test_redis_broker_kill_without_persistence_loses_queued_jobs(tmp_path):
    require_env("redis")
    off = run_cell(crash_cell("redis-raw", "reliable", "broker-kill", "off"), tmp_path / "off")
    assert off["metrics"]["lost"] > 0, off["metrics"]["explanation"]
    aof = run_cell(crash_cell("redis-raw", "reliable", "broker-kill", "aof-everysec"),
                   tmp_path / "aof")
    assert aof["metrics"]["lost"] == 0, aof["metrics"]["explanation"]


@pytest.mark.skipif(not (REPO / "adapters" / "celery" / "adapter.py").exists(),
                    reason="the celery adapter (adapters/celery/adapter.py) is not in the tree")
@pytest.mark.extended
def test_celery_rabbitmq_reliable_loses_nothing_on_job_process_kill(tmp_path):
    require_env("celery")
    result = run_cell(crash_cell("celery-rabbitmq", "reliable"), tmp_path)
    assert result["metrics"]["lost"] == 0, result["metrics"]["explanation"]
    assert result["settings"]["acks_late"] and result["settings"]["reject_on_worker_lost"]


@pytest.mark.skipif(not (REPO / "adapters" / "celery" / "adapter.py").exists(),
                    reason="the celery adapter (adapters/celery/adapter.py) is not in the tree")
@pytest.mark.extended
def test_celery_default_node_kill_loses_the_running_jobs(tmp_path):
    require_env("celery")
    metrics = run_cell(crash_cell("celery-rabbitmq", "default", "node-kill"),
                       tmp_path)["metrics"]
    assert metrics["killed_processes"] > 1  # the main process and its pool, at once
    assert metrics["lost_in_flight_on_killed"] == metrics["in_flight_on_killed"], metrics
    assert metrics["workers_replaced"] == 1


def test_arq_reliable_has_no_lost_or_late_job(tmp_path):
    require_env("arq")
    metrics = run_cell(crash_cell("arq", "reliable"), tmp_path)["metrics"]
    assert (metrics["lost"], metrics["late"]) == (0, 0), metrics["explanation"]
    assert metrics["started_twice"] >= 1  # re-run once the in-progress key expired
