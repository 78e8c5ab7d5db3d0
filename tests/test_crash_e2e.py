"""Crash recovery end to end: real workers, real brokers started by the harness.

Each test runs one crash-recovery cell through the Runner (the coordinator's
own code path: driver subprocess, fault protocol, analysis).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from harness.runner import RunConfig, Runner
from scenarios.base import CellPlan, RunOptions
from scenarios.crash import CRASH_RECOVERY
from tests.conftest import REPO, require_env

pytestmark = pytest.mark.slow
OPTIONS = RunOptions()  # the full plan: quick runs only one worker-kill per backend


def crash_cell(backend: str, mode: str, fault: str = "worker-kill",
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
        runner.brokers.stop_all()
        shutil.rmtree(runner.broker_dir, ignore_errors=True)
    assert result["status"] == "ok", result["reason"]
    return result


def test_asyncio_loses_the_jobs_of_its_killed_process(tmp_path):
    metrics = run_cell(crash_cell("asyncio", "default"), tmp_path)["metrics"]
    assert metrics["lost"] > 0
    assert metrics["completed"] + metrics["lost"] == metrics["jobs"]
    assert "memory" in metrics["explanation"]


def test_redis_raw_reliable_loses_nothing_on_worker_kill(tmp_path):
    require_env("redis")
    result = run_cell(crash_cell("redis-raw", "reliable"), tmp_path)
    assert result["metrics"]["lost"] == 0, result["metrics"]["explanation"]


def test_redis_broker_kill_without_persistence_loses_queued_jobs(tmp_path):
    require_env("redis")
    off = run_cell(crash_cell("redis-raw", "reliable", "broker-kill", "off"), tmp_path / "off")
    assert off["metrics"]["lost"] > 0, off["metrics"]["explanation"]
    aof = run_cell(crash_cell("redis-raw", "reliable", "broker-kill", "aof-everysec"),
                   tmp_path / "aof")
    assert aof["metrics"]["lost"] == 0, aof["metrics"]["explanation"]


@pytest.mark.skipif(not (REPO / "adapters" / "celery" / "adapter.py").exists(),
                    reason="the celery adapter (adapters/celery/adapter.py) is not in the tree")
def test_celery_rabbitmq_reliable_loses_nothing_on_worker_kill(tmp_path):
    require_env("celery")
    result = run_cell(crash_cell("celery-rabbitmq", "reliable"), tmp_path)
    assert result["metrics"]["lost"] == 0, result["metrics"]["explanation"]
    assert result["settings"]["acks_late"] and result["settings"]["reject_on_worker_lost"]
