"""asyncio's CPU per job is its event loop thread's, not the driver process's."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from adapters.asyncio_local.adapter import AsyncioAdapter
from adapters.base import AdapterConfig


def _spin(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_the_drivers_own_work_is_not_the_backends_cpu(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QB_RECORDS_DIR", str(tmp_path))  # the adapter sets it otherwise
    adapter = AsyncioAdapter(AdapterConfig(
        backend="asyncio", broker_url=None, slots=2, profile="default", results=False,
        queue="q", records_dir=tmp_path, log_dir=tmp_path))
    adapter.start_workers()
    try:
        assert adapter._loop is not None
        before = adapter.cpu_seconds()
        _spin(0.3)  # the driver's thread: its watch loop reading records, say
        driver_only = adapter.cpu_seconds() - before
        adapter._loop.submit(_spin_async(0.3))  # work on the loop's thread
        with_loop = adapter.cpu_seconds() - before
    finally:
        adapter.stop_workers()
    assert driver_only < 0.1
    assert with_loop >= 0.25
    assert adapter.cpu_seconds() is None  # no loop thread: no reading, not the process's


async def _spin_async(seconds: float) -> None:
    _spin(seconds)
