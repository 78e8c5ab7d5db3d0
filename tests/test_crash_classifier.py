"""The crash-recovery classifier on a hand-built record stream (no broker, no worker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.recorder import RECORD, Event, Recorder
from scenarios.crash_classify import classify
from scenarios.records import load_records

S = 1_000_000_000  # ns per second
KILL = 100 * S
OLD_A, OLD_B, KILLED, NEW = 1001, 1002, 1003, 2001


def write(directory: Path, pid: int, rows: list[tuple[int, Event, float]]) -> Path:
    """Records of one pretend worker process in <pid>.bin, in the recorder's format."""
    path = directory / f"{pid}.bin"
    with open(path, "ab") as handle:
        for job, event, t_s in rows:
            handle.write(RECORD.pack(job, event, 0, pid, int(t_s * S)))
    return path


@pytest.fixture
def records(tmp_path: Path):
    """Ten jobs (0-9) around a kill at t=100 s, the window closing at t=110 s.

    0, 1   ended before the kill (on survivors)                -> once
    2      ran on the killed pid, never ended                  -> lost (in flight on killed)
    3      ran on the killed pid, re-run by a new pid          -> duplicated (started twice)
    4      ended twice (redelivered after it had ended)        -> duplicated (ended twice)
    5      queued at the kill, run once by a survivor after it -> once
    6      never started                                       -> lost (never started)
    7      first run by the new pid after the kill             -> once
    8      ended only after the window closed                  -> lost
    9      started on the killed pid, its END is in a truncated, partial record -> lost
    """
    Recorder(tmp_path).record_many([(j, Event.INTENDED, 1 * S) for j in range(10)]
                                   + [(j, Event.SENT, 1 * S) for j in range(10)])
    write(tmp_path, OLD_A, [(0, Event.START, 99.0), (0, Event.END, 99.2),
                            (4, Event.START, 99.3), (4, Event.END, 99.5),
                            (5, Event.START, 100.5), (5, Event.END, 100.7)])
    write(tmp_path, OLD_B, [(1, Event.START, 99.1), (1, Event.END, 99.3),
                            (4, Event.START, 106.0), (4, Event.END, 106.2),
                            (8, Event.START, 109.9), (8, Event.END, 110.5)])
    killed = write(tmp_path, KILLED, [(2, Event.START, 99.8), (3, Event.START, 99.9),
                                      (9, Event.START, 99.95)])
    write(tmp_path, NEW, [(7, Event.START, 103.0), (7, Event.END, 103.2),
                          (3, Event.START, 104.0), (3, Event.END, 104.2)])
    with open(killed, "ab") as handle:  # a record cut short: must be dropped, not misread
        handle.write(RECORD.pack(9, Event.END, 0, KILLED, int(99.99 * S))[:13])
    return load_records(tmp_path)


def test_record_files_load_without_the_partial_record(records):
    assert len(records) == 20 + 6 + 6 + 3 + 4
    assert not ((records.job_id == 9) & (records.event == int(Event.END))).any()


def test_counts(records):
    out = classify(records, range(10), KILL, 110 * S, killed_pids=[KILLED])
    assert out["jobs"] == 10
    assert out["lost"] == 4  # 2, 6, 8, 9
    assert out["late"] == 0  # no late watch
    assert out["duplicated"] == 2  # 3 (started twice), 4 (ended twice)
    assert out["once"] == 4  # 0, 1, 5, 7
    assert out["lost"] + out["late"] + out["once"] + out["duplicated"] == out["jobs"]
    assert out["completed"] == out["once"] + out["duplicated"] == 6
    assert out["started_twice"] == 2 and out["ended_twice"] == 1
    assert out["ended_before_kill"] == 3  # 0, 1, 4
    assert out["in_flight_at_kill"] == 3  # 2, 3, 9 (started, not ended, before the kill)
    assert out["in_flight_on_killed"] == 3
    assert out["lost_in_flight_on_killed"] == 2  # 2, 9 (3 was re-run)
    assert out["lost_never_started"] == 1  # 6 (8 started inside the window)
    assert out["errors"] == 0


def test_a_job_that_ends_in_the_late_watch_is_late_not_lost(records):
    # 8 ENDs at 110.5 s: after the window (110 s), inside a late watch to 112 s.
    out = classify(records, range(10), KILL, 110 * S, late_end_ns=112 * S,
                   killed_pids=[KILLED])
    assert (out["lost"], out["late"], out["once"], out["duplicated"]) == (3, 1, 4, 2)
    assert out["completed"] == 6  # ended in the window: late jobs are not among them
    assert out["recovery_s"]["last"] == pytest.approx(10.5)
    # A watch that ends before the END leaves it lost.
    early = classify(records, range(10), KILL, 110 * S, late_end_ns=int(110.4 * S))
    assert (early["lost"], early["late"]) == (4, 0)


def test_lost_never_started_counts_only_starts_in_the_window(records):
    # 8 STARTed at 109.9 s: with the window closing at 109 s it never started.
    out = classify(records, range(10), KILL, 109 * S)
    assert out["lost"] == 4
    assert out["lost_never_started"] == 2  # 6 and 8


def test_recovery_counts_only_jobs_the_kill_hit(records):
    out = classify(records, range(10), KILL, 110 * S, killed_pids=[KILLED])
    # Affected: 2, 3, 9 (on the killed pid) and 5, 6, 7, 8 (queued at the kill). Job 4's
    # second END (106.2 s) is not among them: it had ended before the kill.
    assert out["recovery_s"]["first"] == pytest.approx(0.7)  # 5, queued, on a survivor
    assert out["recovery_s"]["last"] == pytest.approx(4.2)  # 3's re-run
    assert out["recovery_s"]["rerun"] == pytest.approx(4.2)


def test_a_job_on_a_surviving_process_is_not_recovery(tmp_path):
    write(tmp_path, OLD_A, [(0, Event.START, 99.9), (0, Event.END, 100.1)])
    write(tmp_path, KILLED, [(1, Event.START, 99.9)])
    write(tmp_path, NEW, [(1, Event.START, 105.0), (1, Event.END, 105.2)])
    out = classify(load_records(tmp_path), [0, 1], KILL, 110 * S, killed_pids=[KILLED])
    assert out["recovery_s"] == {"first": pytest.approx(5.2), "last": pytest.approx(5.2),
                                 "rerun": pytest.approx(5.2)}
    assert out["duplicated"] == 1 and out["once"] == 1 and out["lost"] == 0


def test_a_broker_kill_hits_every_running_job(tmp_path):
    write(tmp_path, OLD_A, [(0, Event.START, 99.0), (0, Event.END, 100.1),
                            (1, Event.START, 102.0), (1, Event.END, 102.2)])
    out = classify(load_records(tmp_path), [0, 1], KILL, 110 * S)
    assert out["recovery_s"] == {"first": pytest.approx(0.1), "last": pytest.approx(2.2),
                                 "rerun": None}
    assert out["lost"] == 0 and out["duplicated"] == 0 and out["ended_before_kill"] == 0


def test_nothing_recovered(tmp_path):
    write(tmp_path, OLD_A, [(0, Event.START, 99.0), (0, Event.END, 99.5)])
    write(tmp_path, KILLED, [(1, Event.START, 99.9)])
    out = classify(load_records(tmp_path), [0, 1, 2], KILL, 110 * S, killed_pids=[KILLED])
    assert out["recovery_s"] == {"first": None, "last": None, "rerun": None}
    assert (out["lost"], out["once"], out["lost_never_started"]) == (2, 1, 1)


def _crash_plan(tmp_path, quick, profiles):
    from harness.runner import RunConfig, Runner
    from scenarios.base import RunOptions

    options = RunOptions(quick=quick, profile=profiles[0], profiles=profiles)
    runner = Runner(RunConfig(scenarios=["crash-recovery"], backends=["asyncio", "rq"],
                              rounds=1, out=tmp_path / f"{quick}-{'-'.join(profiles)}",
                              options=options))
    try:
        return [cell for _round, cell in runner.plan()]
    finally:
        runner.stop_brokers()


@pytest.mark.parametrize("profiles", [("default",), ("reliable",), ("default", "reliable")])
def test_full_plan_has_both_profiles_once_whatever_profile_says(tmp_path, profiles):
    cells = _crash_plan(tmp_path, False, profiles)
    worker = sorted((c.backend, c.profile, c.params["fault"]) for c in cells
                    if c.params["fault"] != "broker-kill")
    # asyncio's one process is its node: node-kill would be the same kill, so it runs once
    assert worker == [("asyncio", "default", "job-process-kill"),
                      ("asyncio", "reliable", "job-process-kill"),
                      ("rq", "default", "job-process-kill"), ("rq", "default", "node-kill"),
                      ("rq", "reliable", "job-process-kill"), ("rq", "reliable", "node-kill")]
    broker = [(c.backend, c.profile, c.params["persistence"], c.broker_kill) for c in cells
              if c.params["fault"] == "broker-kill"]
    assert broker == [("rq", "reliable", "off", {"appendonly": "no"}),
                      ("rq", "reliable", "aof-everysec",
                       {"appendonly": "yes", "appendfsync": "everysec"})]


def test_every_backend_shortens_its_redelivery_into_the_window():
    from adapters import BACKENDS
    from scenarios.base import RunOptions
    from scenarios.crash import CRASH_RECOVERY, redelivery_s

    for name in BACKENDS:
        for cell in CRASH_RECOVERY.plan(name, RunOptions()):
            phase = cell.workload["phases"][0]
            delay = redelivery_s(name, cell.profile)
            assert phase["window_s"] >= delay + CRASH_RECOVERY.grids.full.base_s, name
            assert 0 < phase["late_grace_s"] < phase["window_s"], name
            for option in BACKENDS[name].crash.timeout_options:
                assert cell.options[option] == 5.0, (name, option)
    assert redelivery_s("arq", "default") == 15.0  # job_timeout 5 s + the 10 s arq adds
    # nothing re-runs a dead worker's job in these defaults: their cells wait no timeout
    for name in ("taskiq-redis", "procrastinate"):
        assert redelivery_s(name, "default") == 0.0
        assert redelivery_s(name, "reliable") == 5.0


@pytest.mark.parametrize("profiles", [("default",), ("reliable",), ("default", "reliable")])
def test_quick_plan_kills_a_job_process_in_the_runs_first_profile(tmp_path, profiles):
    cells = _crash_plan(tmp_path, True, profiles)
    assert [(c.backend, c.profile, c.params["fault"]) for c in cells] == [
        ("asyncio", profiles[0], "job-process-kill"), ("rq", profiles[0], "job-process-kill")]


def test_a_user_given_broker_cannot_be_killed(tmp_path):
    from harness.brokers import BrokerError, Brokers
    from harness.faults import prepare

    brokers = Brokers(tmp_path, {"redis": "redis://127.0.0.1:1/0"})
    with pytest.raises(BrokerError, match="cannot be killed"):
        prepare(brokers, "redis", {"appendonly": "no"}, tmp_path / "cell")


def test_a_failure_reason_keeps_its_cause_on_one_line() -> None:
    from harness.runner import one_line

    started = ("WorkerStartError: redis-raw worker exited with code 1 before it was ready:\n"
               "Traceback (most recent call last):\n  File x.py, line 1\n"
               "redis.exceptions.ConnectionError: Error 111 connecting to 127.0.0.1:6399.\n")
    assert one_line(started) == (
        "WorkerStartError: redis-raw worker exited with code 1 before it was ready: "
        "redis.exceptions.ConnectionError: Error 111 connecting to 127.0.0.1:6399.")
    assert one_line("driver died\nmore") == "driver died"
    assert one_line("\n") == "failed (no reason given)"


def test_scenarios_run_in_their_order_whatever_order_they_are_named_in(tmp_path) -> None:
    """payload's 64 B cell reuses the throughput noop cell only when it comes after it."""
    from harness.runner import RunConfig, Runner
    from scenarios.base import RunOptions

    runner = Runner(RunConfig(scenarios=["payload", "latency", "throughput"],
                              backends=["asyncio"], rounds=1, out=tmp_path / "run",
                              options=RunOptions(quick=True)))
    try:
        order = list(dict.fromkeys(cell.scenario for _round, cell in runner.plan()))
    finally:
        runner.stop_brokers()
    assert order == ["throughput", "latency", "payload"]


# The committed crash cells with a late job; docs/methodology.md (Late watch) names each
KNOWN_LATE = [
    "reference/2026-12-04-full-timing-0544365/nine-backends: celery-rabbitmq "
    "{'fault': 'job-process-kill', 'mode': 'reliable', 'persistence': None, 'jobs': 24}",
]


def test_every_committed_late_job_is_the_one_methodology_names():
    """docs/methodology.md (Late watch) says which committed crash cells had a job end
    late, which is what the 2 s watch rests on: a run with a new one must change that
    text and this list."""
    import json

    root = Path(__file__).resolve().parent.parent / "results"
    late = []
    for path in sorted(root.rglob("summary.json")):
        summary = json.loads(path.read_text())
        for cell in summary.get("cells") or []:
            if cell.get("scenario") == "crash-recovery" and (cell.get("metrics") or {}).get("late"):
                late.append(f"{path.parent.relative_to(root)}: {cell['backend']} {cell['params']}")
    assert late == KNOWN_LATE, late
