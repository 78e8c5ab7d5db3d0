"""A gated fill runs with the garbage collector off and leaves it on, even when it fails."""

from __future__ import annotations

import gc
from collections.abc import Sequence
from pathlib import Path

import pytest

from adapters.base import AdapterConfig, JobCall
from core.protocol import JobSpec
from core.recorder import Recorder
from harness.driver.producer import Producer


class InProcessQueue:
    """Keeps the filled jobs; notes whether the collector ran while it took them."""

    in_process = True

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.jobs: list[JobCall] = []
        self.collector_on: list[bool] = []

    def fill(self, jobs: Sequence[JobCall]) -> None:
        self.collector_on.append(gc.isenabled())
        if self.fail:
            raise RuntimeError("broker gone")
        self.jobs.extend(jobs)

    def wait_enqueued(self) -> None:
        pass

    def backlog_filled(self) -> None:
        pass


def producer(tmp_path: Path, adapter: InProcessQueue) -> Producer:
    config = AdapterConfig(backend="asyncio", broker_url=None, slots=2, profile="default",
                           results=False, queue="q", records_dir=tmp_path,
                           log_dir=tmp_path / "logs", cpu_count=2)
    return Producer(adapter, config, Recorder(tmp_path / "records"),  # type: ignore[arg-type]
                    JobSpec("noop", 0), 16)


def test_the_collector_is_off_while_filling_and_on_after(tmp_path: Path) -> None:
    adapter = InProcessQueue()
    producer(tmp_path, adapter).fill(0, 1000, 250)
    assert len(adapter.jobs) == 1000 and adapter.collector_on == [False] * 4
    assert gc.isenabled()


def test_a_failed_fill_still_turns_the_collector_back_on(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="broker gone"):
        producer(tmp_path, InProcessQueue(fail=True)).fill(0, 10, 5)
    assert gc.isenabled()


def test_a_collector_the_caller_turned_off_stays_off(tmp_path: Path) -> None:
    gc.disable()
    try:
        producer(tmp_path, InProcessQueue()).fill(0, 10, 5)
        assert not gc.isenabled()
    finally:
        gc.enable()
