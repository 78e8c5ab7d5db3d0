"""The driver's step clock: each mark gives the time since the last one to its step."""

from __future__ import annotations

import pytest

from harness.driver import steps
from harness.driver.steps import StepClock, wall_parts


@pytest.fixture
def fake_ns(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    now = [0]
    monkeypatch.setattr(steps.time, "monotonic_ns", lambda: now[0])
    return now


def test_marks_split_the_time_between_steps_of_phases_and_of_the_cell(fake_ns: list[int]
                                                                      ) -> None:
    clock = StepClock()
    fake_ns[0] = 1_000_000_000
    clock.mark_cell("prepare")
    clock.phase = "sustained"
    fake_ns[0] += 2_000_000_000
    clock.mark("fill")
    fake_ns[0] += 500_000_000
    clock.mark()  # the phase's unnamed rest
    fake_ns[0] += 250_000_000
    clock.mark("fill")  # a step that comes back adds up
    clock.phase = ""
    fake_ns[0] += 100_000
    clock.mark_cell("settle")  # too short to be a step of its own
    assert clock.seconds == {"prepare": 1.0, "sustained.fill": 2.25, "sustained": 0.5}
    assert list(clock.seconds) == ["prepare", "sustained.fill", "sustained"]


def test_wall_parts_add_what_the_driver_did_not_time() -> None:
    assert wall_parts({"a.x": 1.0, "b": 2.0}, 3.5) == {"a.x": 1.0, "b": 2.0, "other": 0.5}
    assert wall_parts({"a": 2.0}, 1.5) == {"a": 2.0, "other": 0.0}
    assert wall_parts({}, 2.0) is None
