"""The machine-speed meter: how fast this machine's CPUs ran while a window was counted.

On a shared VM a core's speed is not a constant. On the 2-core machines this
project is measured on, a fixed Python loop takes about 7 ms in one state and
10-11 ms in another, each lasting seconds, on each core independently. An 8 s
window catches a different mix of the two every time, which moves a backend's
figure by up to 40% from round to round with nothing changed.

The meter runs a tiny fixed loop on every CPU for the whole run
(core/speedprobe.py, about 1% of each core) and times it in CPU time. A cell's
`probe_us` is the loop's mean cost over its window, and `jobs_per_loop` is
jobs_per_s x probe_us: jobs completed in the time one loop took then, a
figure that the machine's speed changes cancel out of. Compare a backend's
`jobs_per_loop` with its own in other rounds and runs, not with another
backend's (a backend that loads both cores slows the loop itself).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core import procs
from core.protocol import DriverReport
from core.speedprobe import INTERVAL_S, LOOP_ITERATIONS, SAMPLE
from harness.envs import REPO_ROOT

SAMPLE_DTYPE = np.dtype([("t_ns", "<i8"), ("cost_ns", "<i8")])
assert SAMPLE_DTYPE.itemsize == SAMPLE.size
MIN_SAMPLES = 10  # a window with fewer gets no speed figure


class SpeedMeter:
    """One probe process per CPU this process may run on, writing into `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.cpus = sorted(os.sched_getaffinity(0))
        self._started: list[Any] = []

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for cpu in self.cpus:
            self._started.append(procs.spawn(
                [sys.executable, "-m", "core.speedprobe", str(self.file(cpu)), str(cpu)],
                log_path=self.directory / f"cpu{cpu}.log", cwd=REPO_ROOT))

    def stop(self) -> None:
        procs.stop_trees(self._started, grace_s=2.0)
        self._started.clear()

    def file(self, cpu: int) -> Path:
        return self.directory / f"cpu{cpu}.samples"

    def settings(self) -> dict[str, Any]:
        """What run.json records about the meter."""
        return {"loop_iterations": LOOP_ITERATIONS, "interval_s": INTERVAL_S,
                "cpus": self.cpus}

    def window_cost_us(self, start_ns: int, end_ns: int) -> float | None:
        """The loop's mean CPU cost (us) over [start_ns, end_ns), all CPUs together."""
        costs = [load(self.file(cpu)) for cpu in self.cpus]
        inside = [s["cost_ns"][(s["t_ns"] >= start_ns) & (s["t_ns"] < end_ns)] for s in costs]
        return mean_us(inside)

    def annotate(self, metrics: dict[str, Any], report: DriverReport) -> None:
        """Add probe_us and jobs_per_loop to a cell's metrics that have a counted
        window (a steady-state jobs_per_s); others are left as they are."""
        window = next(((p.window_start_ns, p.window_end_ns) for p in report.phases
                       if p.window_start_ns is not None and p.window_end_ns is not None), None)
        if window is None or not isinstance(metrics.get("jobs_per_s"), int | float):
            return
        cost = self.window_cost_us(*window)
        if cost is not None:
            metrics["probe_us"] = round(cost, 2)
            metrics["jobs_per_loop"] = metrics["jobs_per_s"] * cost / 1e6


def load(path: Path) -> np.ndarray:
    """A probe's samples so far (a partly written last sample is left out)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return np.zeros(0, dtype=SAMPLE_DTYPE)
    return np.frombuffer(raw[:len(raw) - len(raw) % SAMPLE_DTYPE.itemsize], dtype=SAMPLE_DTYPE)


def mean_us(costs: Sequence[np.ndarray]) -> float | None:
    """Mean of every CPU's samples in ns, as us; None with fewer than MIN_SAMPLES."""
    joined = np.concatenate(list(costs)) if costs else np.zeros(0)
    return float(joined.mean()) / 1e3 if len(joined) >= MIN_SAMPLES else None
