"""What a driver's environment takes from its run, whatever the shell that started it holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.envnames import INJECT_DELAY_ENV
from harness import driver_handle
from harness.runner import RunConfig, Runner
from scenarios.base import RunOptions


def _runner(tmp_path: Path, delay: float) -> Runner:
    return Runner(RunConfig(scenarios=["throughput"], backends=["asyncio"], rounds=1,
                            out=tmp_path / "run", options=RunOptions(inject_delay_us=delay)))


@pytest.mark.parametrize(("delay", "expected"), [(0, ""), (4.5, "4.5"), (300, "300")])
def test_the_drivers_get_the_runs_delay_not_the_shells(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, delay: float, expected: str) -> None:
    """A QB_INJECT_DELAY_US left exported in the shell must not slow a run whose run.json
    says it was not slowed (adapters/job.py reads the variable; "" is off)."""
    monkeypatch.setenv(INJECT_DELAY_ENV, "777")
    spawned: list[dict[str, str]] = []
    monkeypatch.setattr(driver_handle.procs, "spawn",
                        lambda cmd, env, **_kw: spawned.append(env))
    runner = _runner(tmp_path, delay)
    try:
        driver_handle.LocalDriver("celery", None, tmp_path / "driver.log",
                                  runner.driver_env()).start([tmp_path / "cell"])
        (env,) = spawned
        assert env[INJECT_DELAY_ENV] == expected
        assert env["TMPDIR"] == str(runner.scratch_dir) and runner.scratch_dir.is_dir()
    finally:
        runner.stop_brokers()
    assert not runner.scratch_dir.exists() and not runner.broker_dir.exists()
