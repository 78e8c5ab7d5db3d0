"""The observer effect: bare jobs only count themselves; the harness's own cost stays bounded."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from adapters import job
from core import gate, jobcount, recorder
from core.envnames import GATE_ENV, RECORDS_DIR_ENV
from core.jobcount import COUNTS_DIR, JobCounter, read_counts
from core.numbers import median_interval
from core.recorder import Recorder
from harness.driver.alternate import ABBA
from harness.driver.tally import JobTally
from harness.observer import ObserverProbe, group_effects, render_observer
from reports import render
from scenarios.records import load_records
from tests.test_report import run_info, text_of, throughput_cells, write_run

LOOSE_BOUND = 0.15  # CI notices a regression of the harness, not machine noise


@pytest.fixture
def cell_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "0003-throughput-x"
    (folder / "records").mkdir(parents=True)
    monkeypatch.setenv(RECORDS_DIR_ENV, str(tmp_path))
    monkeypatch.setenv(GATE_ENV, "1")
    for module, cache in ((recorder, "_cell_dirs"), (recorder, "_recorders"),
                          (jobcount, "_counters"), (gate, "_gates")):
        monkeypatch.setattr(module, cache, {})  # each test's own cell folder
    gate.set_gate(folder, True)
    return folder


def test_bare_jobs_write_no_records_and_are_counted(cell_dir: Path) -> None:
    gate.set_bare(cell_dir, True)
    for n in range(5):
        job.bench_job(3 * recorder.ID_SPAN + n, 0, {"kind": "noop"})
    with pytest.raises(job.InjectedFailure):
        job.bench_job(3 * recorder.ID_SPAN + 9, 0, {"kind": "fail"})
    assert list((cell_dir / "records").iterdir()) == []
    count, latest = read_counts(cell_dir / COUNTS_DIR)
    assert count == 6 and latest is not None
    assert JobTally(cell_dir / "records").refresh() == 6


def test_instrumented_jobs_keep_their_records(cell_dir: Path) -> None:
    job.bench_job(3 * recorder.ID_SPAN + 1, 0, {"kind": "noop"})
    assert not (cell_dir / COUNTS_DIR).exists()
    assert len(load_records(cell_dir / "records")) == 2
    assert JobTally(cell_dir / "records").refresh() == 1


def test_the_record_mode_switches_between_jobs_of_running_workers(cell_dir: Path) -> None:
    """The driver flips the mode while a batch drains: each job follows the mode it
    finds at the gate, and the tally counts both kinds."""
    base = 3 * recorder.ID_SPAN
    job.bench_job(base + 1, 0, {"kind": "noop"})
    gate.set_bare(cell_dir, True)
    for n in range(2, 5):
        job.bench_job(base + n, 0, {"kind": "noop"})
    gate.set_bare(cell_dir, False)
    job.bench_job(base + 5, 0, {"kind": "noop"})
    assert sorted(set(load_records(cell_dir / "records")["job_id"])) == [base + 1, base + 5]
    assert read_counts(cell_dir / COUNTS_DIR)[0] == 3
    assert JobTally(cell_dir / "records").refresh() == 5


def _in_child(work: Any) -> int:
    """Run `work` in a forked child; the child's pid once it exited cleanly."""
    pid = os.fork()
    if pid == 0:
        try:
            work()
        finally:
            os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
    return pid


def test_forked_child_records_its_own_pid(tmp_path: Path) -> None:
    rec = Recorder(tmp_path)
    child = _in_child(lambda: rec.record(1, recorder.Event.START))
    assert recorder.current_pid() == os.getpid()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{child}.bin"]
    assert set(load_records(tmp_path).pid) == {child}


def test_shared_files_collect_every_child(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """RQ's work horses: one file (the worker's), records with each horse's pid, one count."""
    monkeypatch.setattr(recorder, "_file_owner", None)
    recorder.share_files_with_forks()
    rec, counter = Recorder(tmp_path / "records"), JobCounter(tmp_path / COUNTS_DIR)
    children = [_in_child(lambda: (rec.record(1, recorder.Event.END), counter.add()))
                for _ in range(3)]
    assert [p.name for p in (tmp_path / "records").iterdir()] == [f"{os.getpid()}.bin"]
    assert sorted(load_records(tmp_path / "records").pid) == sorted(children)
    assert read_counts(tmp_path / COUNTS_DIR)[0] == 3


def segments_at(rates: list[tuple[float, float]], segment_ns: int = 200_000_000
                ) -> tuple[list[list[int]], list[int]]:
    """Driver segments in ABBA order and the END times of instrumented jobs, for known
    per-segment rates (instrumented, bare) in jobs/s, spread evenly over each segment."""
    segments, ends = [], []
    for index, (instrumented, bare) in enumerate(rates):
        start, is_bare = index * segment_ns, ABBA[index % 4]
        jobs = round((bare if is_bare else instrumented) * segment_ns / 1e9)
        if not is_bare:
            ends += [start + (k * segment_ns) // max(jobs, 1) for k in range(jobs)]
        segments.append([start, start + segment_ns, int(is_bare), jobs if is_bare else 0])
    return segments, ends


def test_groups_give_the_effect_of_known_rates_and_skip_start_and_tail() -> None:
    # 6 groups: the first (start-up, slow) and the last (the drain's tail) are left out
    rates = [(100.0, 100.0)] * 4 + [(900.0, 1000.0)] * 16 + [(10.0, 10.0)] * 4
    segments, ends = segments_at(rates)
    groups = group_effects(segments, ends)
    assert len(groups) == 4
    for group in groups:
        assert group["instrumented_per_s"] == pytest.approx(900.0)
        assert group["bare_per_s"] == pytest.approx(1000.0)
        assert group["effect"] == pytest.approx(0.10)


def test_a_linear_drift_cancels_within_an_abba_group() -> None:
    """The machine slows by 2% per segment; both modes cost the same: no effect."""
    rates = [(1000.0 * (1 - 0.02 * i),) * 2 for i in range(16)]
    segments, ends = segments_at(rates)
    for group in group_effects(segments, ends):
        assert abs(group["effect"]) < 0.002
    drifting_pairs = [1 - rates[i][0] / rates[i + 1][1] for i in range(0, 16, 2)]
    assert min(abs(p) for p in drifting_pairs) > 0.015  # what back-to-back pairs would call


def test_too_short_a_drain_has_no_group() -> None:
    segments, ends = segments_at([(500.0, 600.0)] * 7)
    assert group_effects(segments, ends) == []


def test_the_interval_of_the_median_is_the_order_statistics_binomial_tails_allow() -> None:
    assert median_interval([0.01] * 5) is None  # 2 x 1/32 > 5%: no interval at 95%
    assert median_interval([6, 5, 4, 3, 2, 1]) == (1, 6)  # 2 x 1/64 <= 5%
    # 21 groups: 2 P(B <= 5) = 2.7% <= 5% < 2 P(B <= 6) = 7.8%: the 6th to the 16th
    assert median_interval(range(1, 22)) == (6, 16)
    assert median_interval(range(1, 101)) == (40, 61)


def test_the_self_test_says_when_the_goal_is_inside_the_interval() -> None:
    effects = [k / 100 for k in range(21)]  # 0% to 20%: the 6th and 16th are 5% and 15%
    row = {"status": "ok", "effect": 0.10, "limit": 0.10, "passed": True, "groups": 21,
           "effect_range": [0.0, 0.20], "segment_s": 0.2, "jobs": 1000,
           "instrumented_per_s": [100.0 * (1 - e) for e in effects],
           "bare_per_s": [100.0] * 21}
    assert "95% CI +5.0% to +15.0% (the goal is inside it);" in render_observer({"x": row})[0]
    row["limit"] = 0.20
    assert "95% CI +5.0% to +15.0%;" in render_observer({"x": row})[0]
    row["effect_interval"] = None  # as measure() stores it for too few groups
    assert "too few groups for a 95% CI" in render_observer({"x": row})[0]


def test_report_shows_the_observer_effect(tmp_path: Path) -> None:
    cells = throughput_cells("redis-raw", 1) + throughput_cells("rq", 1)
    run_dir = write_run(tmp_path / "run", cells, run_info(len(cells)))
    (run_dir / "observer.json").write_text(
        '{"date": "2026-12-01T11:00:00+00:00", "repeats": 3, "segments": 20, "backends": {'
        '"rq": {"status": "ok", "effect": 0.031, "limit": 0.05, "passed": true},'
        '"redis-raw": {"status": "ok", "effect": 0.12, "limit": 0.1, "passed": false,'
        '"effect_range": [-0.1, 0.3], "effect_interval": [0.05, 0.15]}}}')
    text = text_of((render(run_dir)).read_text())
    assert "Observer effect of the harness" in text
    assert "2026-12-01T11:00:00+00:00" in text
    assert "rq +3.1% -" in text and "redis-raw +12.0% (above goal) +5.0% to +15.0%" in text


@pytest.mark.slow
def test_the_harness_costs_a_library_backend_little(tmp_path: Path) -> None:
    """One drain of a library backend whose record mode alternates: the harness's
    recording stays within a loose bound (the goal, 5%, is the self-test's), and both
    kinds of segment counted jobs."""
    from harness.observer import ObserverMeasurement, ObserverSettings
    from harness.runner import RunConfig, Runner
    from scenarios.base import RunOptions

    # dramatiq-redis: a library whose workers start in about a second (celery's take several)
    runner = Runner(RunConfig(scenarios=[], backends=["dramatiq-redis"], rounds=1,
                              out=tmp_path / "observer", options=RunOptions(quick=True)))
    try:
        row = ObserverMeasurement(runner, ObserverSettings(repeats=1, segments=20)).measure(
            "dramatiq-redis")
    finally:
        runner.stop_brokers()
    assert row["status"] == "ok", row
    assert row["groups"] >= 2, row
    assert min(row["bare_per_s"]) > 0 and min(row["instrumented_per_s"]) > 0, row
    assert row["effect"] <= LOOSE_BOUND, row


def test_a_ceiling_whose_broker_cannot_be_had_is_a_failed_row(tmp_path: Path) -> None:
    """No traceback: the self-test's ceiling check says why, as its other failed rows do."""
    from harness.runner import RunConfig, Runner
    from harness.selftest import ceiling_row
    from harness.speed import SpeedMeter
    from scenarios.base import RunOptions

    runner = Runner(RunConfig(scenarios=[], backends=["redis-raw"], rounds=1,
                              out=tmp_path / "run", options=RunOptions(quick=True), urls={}))
    try:
        runner.brokers.unavailable["redis"] = "redis-server is not installed: apt-get install"
        row = ceiling_row(runner, ObserverProbe().cell, "redis", "redis-raw",
                          SpeedMeter(tmp_path / "speed"))
    finally:
        runner.stop_brokers()
    assert row["status"] == "failed"
    assert row["reason"] == "redis-server is not installed: apt-get install"
    from harness.selftest import render_ceilings
    assert render_ceilings({"redis": row}) == [
        "redis-raw          ceiling not measured: redis-server is not installed: apt-get install"]


def test_producer_headroom_does_not_apply_without_a_broker_backed_backend() -> None:
    """asyncio alone (no broker) has nothing to compare the producer with: not a failure."""
    from harness.selftest import headroom_verdict

    asyncio_row = {"status": "ok", "jobs_per_s": 65_000.0, "send_per_s": {1: 140_000.0}}
    assert headroom_verdict({"asyncio": asyncio_row})["passed"] is None
    assert headroom_verdict({})["passed"] is None
    failed = {"status": "failed", "reason": "x"}
    assert headroom_verdict({"asyncio": asyncio_row, "redis-raw": failed})["passed"] is False


def test_producer_headroom_divides_a_backends_own_producer_by_its_own_drain() -> None:
    """The committed 2026-12-01 self-test had amqp-raw's producer (19,399/s) over
    redis-raw's drain (103,594/s): a rate into one broker against a drain from another.
    Each backend's own ratio now, and the tightest is judged."""
    from harness.selftest import headroom_verdict
    rows = {"redis-raw": {"status": "ok", "jobs_per_s": 103_594.0,
                          "send_per_s": {1: 14_111.0, 4: 12_000.0}},
            "amqp-raw": {"status": "ok", "jobs_per_s": 9_000.0,
                         "send_per_s": {1: 19_399.0, 4: 15_000.0}}}
    verdict = headroom_verdict(rows)
    assert verdict["tightest_backend"] == "redis-raw"
    assert verdict["headroom"] == pytest.approx(14_111.0 / 103_594.0)
    rows["pg-raw"] = {"status": "ok", "jobs_per_s": 60_000.0, "send_per_s": {1: 3_000.0}}
    assert headroom_verdict(rows)["tightest_backend"] == "pg-raw"



def test_the_self_tests_probes_answer_what_the_runner_asks_a_scenario() -> None:
    """The runner treats a probe as a scenario: whatever it reads of a cell's scenario
    (self.scenarios[...].X in harness/runner.py) a probe must have (a missing
    handoff_options once crashed every self-test)."""
    import re

    from harness.observer import ObserverProbe
    from harness.selftest import ProducerProbe
    from tests.conftest import REPO

    source = (REPO / "harness" / "runner.py").read_text()
    asked = set(re.findall(r"self\.scenarios\[[\w.]+\]\.(\w+)", source))
    assert "handoff_options" in asked and "analyze" in asked
    for probe in (ObserverProbe, ProducerProbe):
        assert {name for name in asked if not hasattr(probe, name)} == set(), probe


def test_a_batch_that_drained_too_soon_is_sent_again_larger() -> None:
    """A fast ceiling drains its calibrated batch faster in bare segments than the
    calibration did (redis-raw at 500,000 jobs/s): the self-test doubles the batch
    until a group of segments completes, instead of reporting no figure."""
    from types import SimpleNamespace

    from harness.observer import MAX_JOBS, ObserverMeasurement, ObserverSettings

    sizes: list[int] = []

    class FastDrain(ObserverMeasurement):
        def _calibrated_rate(self, backend: str) -> float:
            return 100_000.0

        def _cell(self, plan: Any) -> dict[str, Any]:
            sizes.append(plan.params["jobs"])
            group = {"instrumented_per_s": 9.0e5, "bare_per_s": 1.0e6, "effect": 0.1}
            return {"groups": [group] if plan.params["jobs"] >= 4 * sizes[0] else []}

    runner = SimpleNamespace(scenarios={})
    row = FastDrain(runner, ObserverSettings(repeats=1, segments=4)).measure("redis-raw")
    assert row["status"] == "ok" and row["groups"] == 1, row
    assert sizes == [sizes[0], 2 * sizes[0], 4 * sizes[0]] and row["jobs"] == 4 * sizes[0]
    assert sizes[-1] <= MAX_JOBS


def test_a_preloaded_drain_reports_its_workers_cpu_per_job(tmp_path: Path) -> None:
    """redis-raw, a real bare drain through the runner: the workers' CPU from the gate's
    opening to the last job is some, and no more than its processes could have used."""
    from harness.runner import RunConfig, Runner
    from scenarios.base import RunOptions

    runner = Runner(RunConfig(scenarios=[], backends=["redis-raw"], rounds=1,
                              out=tmp_path / "drain", options=RunOptions(quick=True)))
    probe = ObserverProbe()
    runner.scenarios[probe.name] = probe
    jobs = 20_000
    try:
        result = runner.run_cell(1, probe.cell("redis-raw", jobs, bare=True, processes=2))
    finally:
        runner.release()
    assert result["status"] == "ok", result
    metrics = result["metrics"]
    drain_s = (metrics["drain_ns"][1] - metrics["drain_ns"][0]) / 1e9
    cpu_s = metrics["cpu_us_per_job"] * jobs / 1e6
    assert 0 < cpu_s <= 2 * drain_s + 0.1, (cpu_s, drain_s)
