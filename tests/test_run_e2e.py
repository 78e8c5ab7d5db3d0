"""End to end, as a user runs it: real brokers, real workers, real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from core.results import load_summary
from harness.ceiling_layout import sweep_points
from tests.conftest import (
    broker_url,
    epmd_pids,
    harness_cli,
    live_in_session,
    session_of,
    start_harness,
)

pytestmark = pytest.mark.slow


def wait_gone(sid: int, seconds: float = 10) -> list[str]:
    deadline = time.monotonic() + seconds
    while (left := live_in_session(sid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_quick_throughput_is_physically_sane_and_leaves_nothing(tmp_path):
    out = tmp_path / "run"
    proc = start_harness("run", "--scenario", "throughput", "--backend", "asyncio,redis-raw",
                         "--quick", "--sweep", "--durations", "0,10,100", "--out", str(out))
    _stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert wait_gone(proc.pid) == []
    summary = load_summary(out)
    cells = summary["cells"]
    assert {c["status"] for c in cells} == {"ok"}, [c["reason"] for c in cells]
    for backend in ("asyncio", "redis-raw"):
        durations = {c["params"]["duration_ms"] for c in cells if c["backend"] == backend}
        assert durations == {0, 10, 100}
    for cell in cells:
        metrics = cell["metrics"]
        assert metrics["jobs_per_s"] > 0 and metrics["enqueue_per_s"] > 0
        if cell["params"]["duration_ms"] == 100:
            ideal = cell["params"]["slots"] / 0.1
            assert ideal / 2 <= metrics["jobs_per_s"] <= ideal * 1.05
        # the speed meter timed every window; only jobs that do not sleep get a rate per
        # probe loop (harness/speed.py)
        assert metrics["probe_us"] > 0
        if cell["params"]["duration_ms"] == 0:
            assert metrics["jobs_per_loop"] == pytest.approx(
                metrics["jobs_per_s"] * metrics["probe_us"] / 1e6, rel=1e-3)
        else:
            assert "jobs_per_loop" not in metrics
        # the workers' CPU over the window: real, at most every core's whole window, and a
        # sleeping job's far below its sleep (sleeping burns none)
        cpu_s = metrics["cpu_us_per_job"] * metrics["window_jobs"] / 1e6
        assert 0 < cpu_s <= os.cpu_count() * metrics["window_s"] + 0.05
        assert metrics["cpu_loops_per_job"] == pytest.approx(
            metrics["cpu_us_per_job"] / metrics["probe_us"], rel=1e-3)
        if cell["params"]["duration_ms"] == 100:
            assert metrics["cpu_us_per_job"] < 100_000 / 4
        # a probe where the warm-up cannot give the workers' own rate (redis-raw drains
        # faster than one driver feeds it), none where it can (100 ms jobs: 80/s)
        steps = json.loads((out / cell["cell_dir"] / "driver.json").read_text()
                           )["steps_s"]
        assert ("sustained.probe" in steps) == (metrics["calibrated_by"] == "probe")
        # the summary says where the cell's time went: the driver's steps and the rest
        parts = cell["wall_parts"]
        assert {k: v for k, v in parts.items() if k != "other"} == steps
        # (the CPU reading after the ramp runs into the window's first moments)
        assert (parts["sustained.ramp"] + parts["sustained.window"]
                >= metrics["window_s"] - 0.001)
        # the window opened once the workers were back at speed: 0.2 s at least, 1 s at most
        assert 0.2 <= metrics["ramp_s"] <= 1.1
        assert isinstance(metrics["ramp_reached"], bool)
        assert sum(parts.values()) == pytest.approx(cell["wall_s"], abs=0.05)
        if cell["params"]["duration_ms"] == 100:
            assert metrics["calibrated_by"] == "warm-up"
        if cell["backend"] == "redis-raw" and cell["params"]["duration_ms"] == 0:
            assert metrics["calibrated_by"] == "probe"
    run = json.loads((out / "run.json").read_text())
    # --sweep: a quick run times redis-raw at each process count first, and runs it at
    # the fastest
    layout = run["ceiling_layouts"]["redis-raw"]
    assert [int(n) for n in layout["sweep"]] == sweep_points(8, os.cpu_count() or 1)
    assert all(c["settings"]["processes"] == layout["processes"]
               and c["settings"]["processes_from"].startswith("fastest in this run's sweep")
               for c in cells if c["backend"] == "redis-raw")
    assert run["speed_probe"]["stopped_early"] == []
    assert all((out / "speed" / f"cpu{cpu}.samples").stat().st_size > 0
               for cpu in run["speed_probe"]["cpus"])
    assert run["complete"] is True and run["broker_versions"]["redis"]
    assert run["brokers"]["redis"].startswith("redis://127.0.0.1:")
    assert not (out.parent / "latest").exists()  # --out elsewhere: its folder is the user's


# SIGTERM takes the path SIGINT does (core/interrupts.py) once the run is under way:
# `make test` sends it at the start only, `make test-extended` at every moment.
INTERRUPTS = [(after_s, sig) if sig == signal.SIGINT or after_s == 0.0
              else pytest.param(after_s, sig, marks=pytest.mark.extended)
              for sig in (signal.SIGINT, signal.SIGTERM) for after_s in (0.0, 4.0, 12.0)]


@pytest.mark.parametrize(("after_s", "sig"), INTERRUPTS)
def test_interrupt_stops_everything_and_keeps_finished_cells(tmp_path, sig, after_s):
    """Interrupt right as the run starts (brokers starting), mid-cell, and later."""
    out = tmp_path / "run"
    proc = start_harness("run", "--scenario", "throughput,latency", "--backend",
                         "redis-raw,amqp-raw,asyncio", "--quick", "--out", str(out))
    deadline = time.monotonic() + 60
    while not (out / "run.json").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(after_s)
    proc.send_signal(sig)
    began = time.monotonic()
    proc.communicate(timeout=60)
    assert time.monotonic() - began < 15, "the harness took too long to stop"
    assert proc.returncode != 0
    assert wait_gone(proc.pid) == [], "processes left behind"
    summary = load_summary(out)  # valid JSON with the finished cells
    run = json.loads((out / "run.json").read_text())
    assert run["complete"] is False
    assert all(c["status"] in ("ok", "failed", "skipped") for c in summary["cells"])


@pytest.mark.parametrize("command", [  # RabbitMQ is the first broker each starts
    ("run", "--scenario", "throughput", "--backend", "amqp-raw", "--quick"),
    ("selftest", "--backend", "amqp-raw", "--quick"),
])
def test_a_second_signal_during_the_clean_up_still_stops_everything(tmp_path, command):
    """An impatient second Ctrl-C (or a SIGTERM after it) lands while the brokers stop:
    the clean-up finishes anyway, with one line and no traceback. (It used to abort the
    run's clean-up and leave RabbitMQ's epmd behind, and the self-test ignored Ctrl-C.)"""
    out = tmp_path / "run"
    epmd_before = epmd_pids()
    proc = start_harness(*command, "--out", str(out))
    deadline = time.monotonic() + 60
    while not (out / "run.json").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(12.0)  # RabbitMQ (about 4-10 s to start here) is up by then
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    assert wait_gone(proc.pid) == [], "processes left behind"
    assert epmd_pids() - epmd_before == set(), "RabbitMQ's epmd left behind"


def test_an_unreachable_broker_url_stops_the_run_before_it_starts(tmp_path):
    """The URL is the user's input: one line naming it (masked), exit 2, within seconds,
    and no run folder, rather than a run that skips the backends it was asked for."""
    out = tmp_path / "run"
    began = time.monotonic()
    done = harness_cli("run", "--scenario", "memory", "--backend", "asyncio,redis-raw",
                       "--quick", "--redis-url", "redis://:hunter2@127.0.0.1:1/0",
                       "--out", str(out))
    assert done.returncode == 2, done.stderr
    assert time.monotonic() - began < 30
    assert done.stderr.strip().splitlines() == [
        "python -m harness run: error: cannot reach redis at redis://:***@127.0.0.1:1/0: "
        "[Errno 111] Connection refused (--redis-url)"]
    assert not out.exists()


def test_a_broker_that_cannot_start_skips_its_cells_with_the_cause(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A harness-owned server that exits at start: its cells are skipped with the last
    line of the server's log (its data dir, and so the log, is removed at the end)."""
    fake = tmp_path / "bin"
    fake.mkdir()
    script = fake / "redis-server"
    script.write_text("#!/bin/sh\necho 'FATAL CONFIG FILE ERROR: bad directive'\nexit 1\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "run"
    done = harness_cli("run", "--scenario", "memory", "--backend", "redis-raw", "--quick",
                       "--out", str(out))
    assert done.returncode == 3, done.stderr
    reasons = {cell["reason"] for cell in load_summary(out)["cells"]}
    assert len(reasons) == 1
    (reason,) = reasons
    assert "exited with code 1" in reason and "FATAL CONFIG FILE ERROR" in reason


def test_a_user_given_url_keeps_its_password_out_of_the_results(brokers, tmp_path):
    """The URL reaches the driver through its environment: cell.json, run.json, the
    summaries and the report hold it masked."""
    url = broker_url(brokers, "amqp")
    assert url is not None
    password = urlsplit(url).password
    assert password
    out = tmp_path / "run"
    done = harness_cli("run", "--scenario", "throughput", "--backend", "amqp-raw", "--quick",
                       "--durations", "0", "--amqp-url", url, "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    assert {c["status"] for c in load_summary(out)["cells"]} == {"ok"}
    assert password not in done.stdout + done.stderr
    scanned = 0
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".csv", ".html", ".txt", ".log"):
            assert password not in path.read_text(errors="replace"), path
            scanned += 1
    assert scanned > 5


# a quick run does not sweep the ceilings' layout: redis-raw's noop cell is the first
FIRST_CELL = "0001-"


def test_killed_driver_and_hung_jobs_fail_only_their_cells(tmp_path):
    out = tmp_path / "run"
    proc = start_harness("run", "--scenario", "throughput", "--backend", "redis-raw,asyncio",
                         "--durations", "0,600000", "--quick", "--out", str(out))
    deadline = time.monotonic() + 60
    killed: list[int] = []
    while not killed and time.monotonic() < deadline:
        time.sleep(0.5)  # let the first driver start its workers
        killed = drivers_of_cell(proc.pid, FIRST_CELL)
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
    assert killed, "never saw the first cell's driver"
    _stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 3, stderr  # a finished run with failed cells
    assert "incomplete: redis-raw: 2 of 2 cells failed" in stderr and "(exit 3;" in stderr
    assert wait_gone(proc.pid) == []
    cells = {(c["backend"], c["params"]["duration_ms"]): c for c in load_summary(out)["cells"]}
    first = cells[("redis-raw", 0)]
    assert first["status"] == "failed" and "driver died" in first["reason"]
    assert (out / first["cell_dir"] / "failure.txt").exists()
    hung = cells[("redis-raw", 600000)]
    assert hung["status"] == "failed" and "no job ended" in hung["reason"]
    assert cells[("asyncio", 0)]["status"] == "ok"
    # without --sweep a quick run keeps the ceiling at the CPU-count layout
    assert json.loads((out / "run.json").read_text())["ceiling_layouts"] == {}
    assert hung["settings"]["processes_from"] == "CPU count (no sweep in this run)"


def drivers_of_cell(sid: int, text: str) -> list[int]:
    """PIDs of driver processes in session `sid` whose command line mentions `text`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and session_of(int(entry.name)) == sid:
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "harness.driver" in cmd and text in cmd:
                pids.append(int(entry.name))
    return pids


def test_one_driver_serves_a_backends_scenarios_and_reuses_the_max_cell(tmp_path):
    """Throughput, latency (two forked producers at 3000/s) and payload share one driver
    and its workers; latency's max cell and payload's 64 B cell are the throughput noop
    cell, not a second run."""
    out = tmp_path / "run"
    done = harness_cli("run", "--scenario", "throughput,latency,payload", "--backend",
                       "amqp-raw", "--quick", "--durations", "0", "--rates", "3000",
                       "--out", str(out), timeout=300)
    assert done.returncode == 0, done.stderr
    cells = load_summary(out)["cells"]
    assert {c["status"] for c in cells} == {"ok"}, [c["reason"] for c in cells]
    noop = next(c for c in cells if c["scenario"] == "throughput")
    top = next(c for c in cells if c["params"].get("rate_label") == "max")
    assert top["reused_from"] == noop["cell_dir"]
    assert top["metrics"]["jobs_per_s"] == noop["metrics"]["jobs_per_s"]
    ran = [c for c in cells if "reused_from" not in c]
    metas = [json.loads((out / c["cell_dir"] / "driver.json").read_text()) for c in ran]
    assert len({m["pid"] for m in metas}) == 1  # one driver, workers kept throughout
    assert [m["workers_reused"] for m in metas] == [False] + [True] * (len(metas) - 1)
    fixed = next(m for c, m in zip(ran, metas, strict=True)
                 if c["params"].get("rate_label") == "3000/s")
    assert fixed["phases"][0]["producers"] == 2
    # the forked producers left the queue alone: the payload cells after them drained
    payload = [c for c in cells if c["scenario"] == "payload"]
    assert payload and all(c["metrics"]["completed"] > 0 for c in payload)
    # the 64 B cell is the noop cell; the 1 MiB one ran
    assert [c.get("reused_from") for c in payload] == [noop["cell_dir"], None]
    # the latency probes run on an emptied queue, so every probe is measured
    assert all(c["metrics"]["latency_samples"] == 5 for c in payload)
    for c in (noop, payload[1]):
        meta = json.loads((out / c["cell_dir"] / "driver.json").read_text())
        assert meta["phases"][1]["backlog_purged"]
        assert meta["phases"][1]["timed_out"] is False  # the purged jobs are not awaited


def test_a_run_leaves_no_temporary_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    """Celery's prefork workers (billiard) leave a pymp-* folder in their TMPDIR when they
    are stopped: the run gives its drivers and workers a TMPDIR of its own and removes it."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    done = harness_cli("run", "--scenario", "throughput", "--backend", "celery-redis",
                       "--quick", "--durations", "0", "--out", str(tmp_path / "run"),
                       timeout=300)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in scratch.iterdir()) == []


def test_a_broker_that_dies_mid_cell_fails_that_cell_and_the_rest_goes_on(
        tmp_path: Path) -> None:
    """kill -9 of the harness's redis-server while a cell runs: that cell is failed with
    the broker's death as its reason (never ok with a false rate), the server comes back,
    the other cell runs, and the run exits 3."""
    out = tmp_path / "run"
    proc = start_harness("run", "--scenario", "throughput", "--backend", "redis-raw",
                         "--quick", "--durations", "100,0", "--out", str(out))
    deadline = time.monotonic() + 60
    while not list(out.glob("cells/0001-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(4)  # inside the first cell (warm-up, fill, a 2 s window: about 6 s)
    servers = subprocess.run(["pgrep", "-s", str(proc.pid), "redis-server"],
                             capture_output=True, text=True, check=False).stdout.split()
    assert servers, "no redis-server in the harness's session"
    for pid in servers:
        os.kill(int(pid), signal.SIGKILL)
    _stdout, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 3, stderr
    assert wait_gone(proc.pid) == []
    cells = load_summary(out)["cells"]
    failed = [c for c in cells if c["status"] == "failed"]
    assert len(failed) == 1 and "died during the cell" in failed[0]["reason"], cells
    assert [c["status"] for c in cells if c is not failed[0]] == ["ok"]
