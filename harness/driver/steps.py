"""Where a cell's time goes: seconds per step, in the order the steps first ran.

One clock per cell. Each `mark` gives the time since the previous mark to the
step it names, so the steps add up to the cell's time in the driver. A step of
a phase is keyed "<phase type>.<step>" (`sustained.window`, `crash.late_watch`);
the phase's unnamed remainder is keyed by its type alone (`idle`, `open`); steps
of the cell as a whole (`workers_start`, `settle`) have no prefix. The
coordinator adds what the driver cannot see (`other`: the driver's own start,
the coordinator's polling) and stores the lot as the cell's `wall_parts`.
"""

from __future__ import annotations

import time

MIN_STEP_S = 0.0005  # a mark that follows another this closely adds no new step


class StepClock:
    """Seconds per step of one cell (`seconds`, shared with its DriverReport)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.phase = ""
        self._last = time.monotonic_ns()

    def mark(self, step: str | None = None) -> None:
        """The time since the last mark was spent on `step` of the current phase (None:
        on the phase itself)."""
        self._add(f"{self.phase}.{step}" if self.phase and step else step or self.phase)

    def mark_cell(self, step: str) -> None:
        """The time since the last mark was spent on `step` of the cell, not of a phase."""
        self._add(step)

    def _add(self, key: str) -> None:
        now = time.monotonic_ns()
        seconds = (now - self._last) / 1e9
        self._last = now
        if seconds < MIN_STEP_S and key not in self.seconds:
            return
        self.seconds[key] = round(self.seconds.get(key, 0.0) + seconds, 3)


def wall_parts(steps: dict[str, float] | None, wall_s: float) -> dict[str, float] | None:
    """A cell's steps plus `other`: the part of its wall time the driver did not time
    (its process start for the first cell of a group, the coordinator's polling and
    binding). None when the driver timed nothing (it died first)."""
    if not steps:
        return None
    other = round(max(0.0, wall_s - sum(steps.values())), 3)
    return {**steps, "other": other}
