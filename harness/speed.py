"""The machine-speed meter: how fast this machine's CPUs ran while a window was counted.

On a shared VM a core's speed is not a constant: it changes from one second to
the next, on each core apart, and a window catches a different mix each round
(docs/methodology.md, "Machine speed").

The meter runs a tiny fixed loop on every CPU for the whole run
(core/speedprobe.py, about 1% of each core) and times it in CPU time. A steady-state
cell's `probe_us` is the loop's mean cost over its window (the mean of each CPU's
mean), and `jobs_per_loop` is jobs_per_s x probe_us: jobs completed in the time one
loop took then, a figure the machine's speed changes move much less. Compare a
backend's `jobs_per_loop` with its own in other rounds and runs, not with another
backend's (a backend that loads both cores slows the loop itself).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from core import procs
from core.protocol import DriverReport
from core.speedprobe import INTERVAL_S, LOOP_ITERATIONS, SAMPLE
from harness.envs import REPO_ROOT

SAMPLE_DTYPE = np.dtype([("t_ns", "<i8"), ("cost_ns", "<i8")])
assert SAMPLE_DTYPE.itemsize == SAMPLE.size
MIN_SAMPLES = 5  # per CPU: a window where one CPU has fewer gets no speed figure


class SpeedMeter:
    """One probe process per CPU this process may run on, writing into `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.cpus = sorted(os.sched_getaffinity(0))
        self._started: list[subprocess.Popen[bytes]] = []
        self.stopped_early: list[int] = []  # CPUs whose probe had died when stop() came

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for cpu in self.cpus:
            self._started.append(procs.spawn(
                [sys.executable, "-m", "core.speedprobe", str(self.file(cpu)), str(cpu)],
                log_path=self.directory / f"cpu{cpu}.log", cwd=REPO_ROOT))

    def stop(self) -> None:
        self.stopped_early = [cpu for cpu, proc in zip(self.cpus, self._started, strict=False)
                              if proc.poll() is not None]
        procs.stop_trees(self._started, grace_s=2.0)
        self._started.clear()

    def file(self, cpu: int) -> Path:
        return self.directory / f"cpu{cpu}.samples"

    def settings(self) -> dict[str, Any]:
        """What run.json records about the meter."""
        return {"loop_iterations": LOOP_ITERATIONS, "interval_s": INTERVAL_S,
                "cpus": self.cpus, "stopped_early": self.stopped_early}

    def window_cost_us(self, start_ns: int, end_ns: int) -> float | None:
        """The loop's mean CPU cost (us) over [start_ns, end_ns): the mean of each CPU's
        mean, so a CPU sampled more often weighs no more; None when a CPU has fewer than
        MIN_SAMPLES there (its probe died, or the window is too short)."""
        means = []
        for cpu in self.cpus:
            samples = load(self.file(cpu))
            inside = samples["cost_ns"][(samples["t_ns"] >= start_ns)
                                        & (samples["t_ns"] < end_ns)]
            if len(inside) < MIN_SAMPLES:
                return None
            means.append(float(inside.mean()) / 1e3)
        return sum(means) / len(means) if means else None

    def annotate(self, metrics: dict[str, Any], report: DriverReport) -> None:
        """Add probe_us to a steady-state cell's metrics (those with a per-second series
        over the driver's counted window), and jobs_per_loop where its jobs do not sleep:
        a sleeping job's rate is set by the clock (`ideal_jobs_per_s`), not by how fast
        the CPU runs, so scaling it by the probe would only add the probe's noise."""
        window = next(((p.window_start_ns, p.window_end_ns) for p in report.phases
                       if p.window_start_ns is not None and p.window_end_ns is not None), None)
        if (window is None or "per_second" not in metrics
                or not isinstance(metrics.get("jobs_per_s"), int | float)):
            return
        cost = self.window_cost_us(*window)
        if cost is None:
            return
        metrics["probe_us"] = round(cost, 2)
        if metrics.get("ideal_jobs_per_s") is None:
            metrics["jobs_per_loop"] = per_loop(metrics["jobs_per_s"], cost)
        if isinstance(metrics.get("cpu_us_per_job"), int | float):
            # a sleeping job's CPU is the library's too: every steady cell gets it
            metrics["cpu_loops_per_job"] = metrics["cpu_us_per_job"] / cost


def per_loop(jobs_per_s: float, probe_us: float) -> float:
    """Jobs completed in the time one probe loop took: the rate with the machine's speed
    taken out."""
    return jobs_per_s * probe_us / 1e6


def load(path: Path) -> np.ndarray:
    """A probe's samples so far (a partly written last sample is left out)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return np.zeros(0, dtype=SAMPLE_DTYPE)
    return np.frombuffer(raw[:len(raw) - len(raw) % SAMPLE_DTYPE.itemsize], dtype=SAMPLE_DTYPE)
