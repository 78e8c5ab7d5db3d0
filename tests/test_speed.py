"""The machine-speed meter (harness/speed): real probe processes, and the window figures
on known samples."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from core import procs
from core.protocol import DriverReport, PhaseReport
from core.speedprobe import INTERVAL_S
from harness.speed import MIN_SAMPLES, SAMPLE_DTYPE, SpeedMeter, load


def write_samples(path: Path, samples: list[tuple[int, int]]) -> None:
    path.write_bytes(np.array(samples, dtype=SAMPLE_DTYPE).tobytes())


def steady(jobs_per_s: float) -> dict[str, object]:
    """A steady-state cell's metrics, as the meter finds them."""
    return {"jobs_per_s": jobs_per_s, "per_second": [jobs_per_s]}


def windowed(start: int, end: int) -> DriverReport:
    return DriverReport(phases=[PhaseReport(type="sustained", first_id=0,
                                            window_start_ns=start, window_end_ns=end)])


def test_probes_sample_every_cpu_and_stop(tmp_path: Path) -> None:
    meter = SpeedMeter(tmp_path / "speed")
    meter.start()
    pids = [p.pid for p in meter._started]
    try:
        time.sleep(20 * INTERVAL_S)
    finally:
        meter.stop()
    assert not any(procs.alive(pid) for pid in pids)
    assert all(meter.file(cpu).with_suffix(".log").read_text() == "" for cpu in meter.cpus)
    for cpu in meter.cpus:
        samples = load(meter.file(cpu))
        assert len(samples) >= 5, cpu
        assert (np.diff(samples["t_ns"]) > 0).all()
        assert (samples["cost_ns"] > 0).all()
        # the cost is CPU time of a loop far shorter than the interval between samples
        assert np.median(samples["cost_ns"]) < INTERVAL_S * 1e9


def test_window_cost_joins_cpus_and_ignores_samples_outside(tmp_path: Path) -> None:
    meter = SpeedMeter(tmp_path)
    meter.cpus = [0, 1]
    write_samples(meter.file(0), [(t, 400_000) for t in range(100, 110)] + [(500, 9_000_000)])
    write_samples(meter.file(1), [(t, 600_000) for t in range(100, 110)] + [(50, 9_000_000)])
    assert meter.window_cost_us(100, 200) == pytest.approx(500.0)
    metrics = steady(1000.0)
    meter.annotate(metrics, windowed(100, 200))
    assert metrics["probe_us"] == pytest.approx(500.0)
    assert metrics["jobs_per_loop"] == pytest.approx(0.5)  # 1000 jobs/s x 500 us


def test_a_slower_machine_gives_the_same_jobs_per_loop(tmp_path: Path) -> None:
    """A window in which every core ran 1.5x slower, and the backend with it."""
    meter = SpeedMeter(tmp_path)
    meter.cpus = [0]
    write_samples(meter.file(0), [(t, 400_000) for t in range(0, 20)]
                  + [(t, 600_000) for t in range(20, 40)])
    fast, slow = steady(1500.0), steady(1000.0)
    meter.annotate(fast, windowed(0, 20))
    meter.annotate(slow, windowed(20, 40))
    assert fast["jobs_per_loop"] == pytest.approx(slow["jobs_per_loop"])


def test_no_figure_without_a_window_or_enough_samples_on_every_cpu(tmp_path: Path) -> None:
    meter = SpeedMeter(tmp_path)
    meter.cpus = [0, 1]
    write_samples(meter.file(0), [(t, 400_000) for t in range(100)])
    write_samples(meter.file(1), [(t, 400_000) for t in range(MIN_SAMPLES - 1)])
    one_cpu_short = steady(10.0)  # a probe that died: its core's speed is unknown
    meter.annotate(one_cpu_short, windowed(0, 100))
    assert one_cpu_short == steady(10.0)
    meter.cpus = [0]
    no_window = steady(10.0)
    meter.annotate(no_window, DriverReport(phases=[PhaseReport(type="fill", first_id=0)]))
    assert no_window == steady(10.0)
    not_steady = {"jobs_per_s": 10.0}  # a depth cell: a drain rate, no per-second series
    meter.annotate(not_steady, windowed(0, 100))
    assert not_steady == {"jobs_per_s": 10.0}
    failed_rate = {"window_s": 2.0, "per_second": []}
    meter.annotate(failed_rate, windowed(0, 100))
    assert "probe_us" not in failed_rate


def test_a_probe_that_died_is_recorded(tmp_path: Path) -> None:
    meter = SpeedMeter(tmp_path / "speed")
    meter.start()
    try:
        victim = meter._started[0]
        victim.kill()
        victim.wait()
    finally:
        meter.stop()
    assert meter.settings()["stopped_early"] == [meter.cpus[0]]


def test_sleeping_jobs_get_the_probe_but_no_rate_per_loop(tmp_path: Path) -> None:
    """10 ms jobs: their rate is slots / 10 ms whatever the CPU's speed."""
    meter = SpeedMeter(tmp_path)
    meter.cpus = [0]
    write_samples(meter.file(0), [(t, 400_000) for t in range(20)])
    metrics = {**steady(790.0), "ideal_jobs_per_s": 800.0}
    meter.annotate(metrics, windowed(0, 20))
    assert metrics["probe_us"] == pytest.approx(400.0) and "jobs_per_loop" not in metrics


def test_cpu_per_job_is_given_in_probe_loops_for_every_steady_cell(tmp_path: Path) -> None:
    """CPU per job on a core 1.5x slower is 1.5x the microseconds and the same loops; a
    sleeping job's CPU is the library's too, so it gets the figure."""
    meter = SpeedMeter(tmp_path)
    meter.cpus = [0]
    write_samples(meter.file(0), [(t, 400_000) for t in range(0, 20)]
                  + [(t, 600_000) for t in range(20, 40)])
    fast = {**steady(790.0), "ideal_jobs_per_s": 800.0, "cpu_us_per_job": 200.0}
    slow = {**steady(790.0), "ideal_jobs_per_s": 800.0, "cpu_us_per_job": 300.0}
    meter.annotate(fast, windowed(0, 20))
    meter.annotate(slow, windowed(20, 40))
    assert fast["cpu_loops_per_job"] == pytest.approx(slow["cpu_loops_per_job"]) == 0.5
    no_reading = steady(10.0)  # a run whose driver read no CPU (an older driver.json)
    meter.annotate(no_reading, windowed(0, 20))
    assert "cpu_loops_per_job" not in no_reading


def test_cpu_seconds_counts_a_process_and_its_reaped_children() -> None:
    """What the driver reads at a window's ends: an RQ work horse's CPU is its worker's
    once the worker has reaped it; a pid that is gone counts nothing."""
    import subprocess
    import sys

    from core.procs import cpu_seconds

    child = subprocess.Popen([sys.executable, "-c",
                              "import time\nend = time.process_time() + 0.3\n"
                              "while time.process_time() < end: pass"])
    before = cpu_seconds([os.getpid()])
    child.wait()  # reaped: its 0.3 s are in this process's cutime now
    after = cpu_seconds([os.getpid(), child.pid])
    assert 0.28 <= after - before <= 1.0
    assert cpu_seconds([child.pid]) == 0.0
