"""The open-loop schedule's cut-off (harness/driver/schedule.py) and how the latency
scenario reports a producer that could not offer its rate (no broker needed); a large
fill split over forked producers (a real Redis)."""

from __future__ import annotations

import json
import os
import subprocess

import pandas as pd
import pytest

from core.protocol import DriverReport, PhaseReport
from core.recorder import Event
from harness.driver.producer import FILL_SHARE
from harness.driver.schedule import CUTOFF_FACTOR, Schedule, follow
from scenarios.base import CellFailed, CellPlan, RunOptions
from scenarios.latency import LATENCY, offered_rate
from tests.conftest import REPO, broker_url, require_env

SECOND = 1_000_000_000


class FakeClock:
    """A monotonic clock that moves only when slept on or when a send takes time."""

    def __init__(self, now: int = 0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += int(seconds * SECOND)


def run(schedule: Schedule, total: int, send_ns: int, slots: range | None = None
        ) -> tuple[int, list[tuple[int, int, int]]]:
    """follow() with each send taking `send_ns`; (sent, [(index, intended, sent at)])."""
    clock = FakeClock(schedule.start_ns)
    log: list[tuple[int, int, int]] = []

    def send(index: int, intended: int) -> None:
        log.append((index, intended, clock.now))
        clock.now += send_ns

    sent = follow(schedule, slots if slots is not None else range(total), send, clock,
                  clock.sleep)
    return sent, log


def test_a_producer_that_keeps_up_sends_every_job_on_time():
    schedule = Schedule(start_ns=5 * SECOND, rate=100.0, duration_s=1.0)
    sent, log = run(schedule, total=100, send_ns=1_000_000)  # 1 ms per send, 10 ms apart
    assert sent == 100
    assert [intended for _, intended, _ in log] == [schedule.intended_ns(i) for i in range(100)]
    assert all(at == intended for _, intended, at in log)  # never late, never early


def test_a_slow_producer_stops_at_the_cut_off_and_says_how_many_it_sent():
    schedule = Schedule(start_ns=0, rate=10_000.0, duration_s=1.5)  # 15,000 jobs due
    sent, log = run(schedule, total=15_000, send_ns=SECOND // 650)  # single INSERTs
    assert sent == len(log) < 15_000
    # every send up to the cut-off goes (the one starting right at it too), none after
    assert sent == int(650 * CUTOFF_FACTOR * 1.5) + 1
    assert all(at <= schedule.cutoff_ns for _, _, at in log)
    assert "still behind the schedule" in schedule.cutoff_reason()


def test_a_producer_slower_than_the_schedule_but_inside_the_bound_sends_everything():
    schedule = Schedule(start_ns=0, rate=1000.0, duration_s=1.0)
    sent, log = run(schedule, total=1000, send_ns=1_500_000)  # 1.5 s for 1 s of schedule
    assert sent == 1000
    assert log[-1][2] - log[-1][1] > SECOND // 3  # late, and that is schedule lag


def test_forked_producers_share_the_schedule_and_its_cut_off():
    schedule = Schedule(start_ns=0, rate=1000.0, duration_s=1.0)
    sent, log = run(schedule, total=1000, send_ns=10_000_000, slots=range(1, 1000, 3))
    assert [index for index, _, _ in log] == list(range(1, 3 * len(log), 3))
    assert sent == len(log) < len(range(1, 1000, 3))
    assert log[-1][2] <= schedule.cutoff_ns


def open_cell_records(intended: list[int], sent: list[int], started: list[int] | None = None
                      ) -> pd.DataFrame:
    """Records of jobs 0.. due at `intended` and sent at `sent` (ns), each started at
    `started` (default: 1 ms after it was sent) and ended as it started."""
    rows = []
    starts = started or [at + 1_000_000 for at in sent]
    for job_id, (due, at, start) in enumerate(zip(intended, sent, starts, strict=True)):
        rows += [(job_id, Event.INTENDED, due), (job_id, Event.SENT, at),
                 (job_id, Event.START, start), (job_id, Event.END, start)]
    frame = pd.DataFrame(rows, columns=["job_id", "event", "t_ns"])
    return frame.assign(event=frame["event"].astype(int), attempt=1, pid=1)


def test_offered_rate_is_over_the_schedule_or_over_the_time_it_really_took():
    phase = PhaseReport(type="open", first_id=0, load_start_ns=0)
    on_time = pd.DataFrame({"sent": [i * 10_000_000 for i in range(100)]})  # 100/s for 1 s
    assert offered_rate(on_time, phase, 1.0) == 100.0
    late = pd.DataFrame({"sent": [i * 20_000_000 for i in range(101)]})  # 101 jobs in 2 s
    assert offered_rate(late, phase, 1.0) == 50.5


def open_cell(rate: float, label: str) -> CellPlan:
    return CellPlan(scenario="latency", backend="pg-raw",
                    params={"rate": rate, "rate_label": label, "duration_s": 1.0}, workload={},
                    timeout_s=10)


def test_a_producer_limited_cell_reports_what_was_offered_and_no_latency():
    # 2,000 jobs due in 1 s; one send takes 1.5 ms, so 1,334 went out before the 2 s cut-off
    intended = [i * 500_000 for i in range(1334)]
    sent = [i * 1_500_000 for i in range(1334)]
    phase = PhaseReport(type="open", first_id=0, expected=1334, load_start_ns=0,
                        load_end_ns=sent[-1], unsent=666,
                        unsent_reason="the producer was still behind the schedule")
    metrics = LATENCY.analyze(open_cell(2000.0, "2000/s"), open_cell_records(intended, sent),
                              DriverReport(phases=[phase]))
    assert metrics["producer_limited"] is True and metrics["saturated"] is False
    assert 600 < metrics["offered_per_s"] < 700 and metrics["unsent"] == 666
    assert metrics["latency_ms"] is None and metrics["e2e_ms"] is None
    assert "666 jobs were not sent" in metrics["explanation"]
    assert LATENCY.headline(metrics) == "producer-limited (offered 667 jobs/s, 666 unsent)"


def test_a_cell_whose_producer_kept_up_is_not_producer_limited():
    times = [i * 5_000_000 for i in range(200)]  # 200/s for 1 s, each sent on time
    phase = PhaseReport(type="open", first_id=0, expected=200, load_start_ns=0,
                        load_end_ns=times[-1], unsent=0)
    metrics = LATENCY.analyze(open_cell(200.0, "200/s"), open_cell_records(times, times),
                              DriverReport(phases=[phase]))
    assert metrics["producer_limited"] is False and metrics["unsent"] == 0
    assert metrics["saturated"] is False
    assert "explanation" not in metrics and metrics["latency_ms"]["p50"] is not None


@pytest.mark.slow
def test_a_large_fill_is_split_over_forked_producers_and_sends_each_job_once(brokers, tmp_path):
    python = require_env("redis")
    url = broker_url(brokers, "redis")
    done = subprocess.run([str(python), str(REPO / "tests" / "fill_probe.py"), "redis-raw", url,
                           str(tmp_path), str(3 * FILL_SHARE)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["queued"] == 3 * FILL_SHARE
    assert report["sent_ids"] == list(range(3 * FILL_SHARE))
    assert report["sent_rows"] == 3 * FILL_SHARE  # no job sent twice
    assert len(report["pids"]) == 2  # one producer per CPU of the config: the driver and a fork


def sent_at(rate: float, seconds: float) -> list[int]:
    return [int(i * SECOND / rate) for i in range(int(rate * seconds))]


def analyzed(times: list[int], started: list[int], rate: float) -> dict:
    phase = PhaseReport(type="open", first_id=0, expected=len(times), load_start_ns=0,
                        load_end_ns=times[-1], unsent=0)
    plan = open_cell(rate, f"{rate:g}/s")
    plan.params["duration_s"] = 1.5
    return LATENCY.analyze(plan, open_cell_records(times, times, started),
                           DriverReport(phases=[phase]))


def test_a_polling_backend_that_keeps_up_is_not_saturated():
    """arq polls every 0.5 s: each job starts at the next poll, so it waits 0-0.5 s, and
    the last jobs end up to 0.5 s after sending stopped. Jobs per second from the first
    send to the last end read 0.75 of the rate (the old test called that saturated); the
    wait does not grow, and the latency is reported."""
    times = sent_at(200.0, 1.5)
    poll, phase = SECOND // 2, SECOND * 45 // 100  # polls at 0.45 s, 0.95 s, ...
    metrics = analyzed(times, [((t - phase) // poll + 1) * poll + phase for t in times], 200.0)
    assert metrics["achieved_per_s"] < 0.9 * 200
    assert abs(metrics["wait_growth"]) < 0.05
    assert metrics["saturated"] is False and metrics["latency_ms"]["p50"] > 200


def test_a_backend_that_starts_four_in_five_is_saturated():
    """It starts 160 of the 200 jobs/s it is sent: the wait grows by 1/0.8 - 1 = 0.25 s per
    second of sending, though 1.5 s of sending leaves a backlog of only 0.3 s of load."""
    times, started, free = sent_at(200.0, 1.5), [], 0
    for sent in times:
        free = max(sent, free) + int(SECOND / 160)
        started.append(free)
    metrics = analyzed(times, started, 200.0)
    assert 0.2 < metrics["wait_growth"] < 0.3
    assert metrics["backlog"] < 200  # the backlog rule alone would not see it
    assert metrics["saturated"] is True and metrics["latency_ms"] is None



def test_a_fraction_of_max_cell_takes_the_maximum_of_its_own_profile() -> None:
    """With two profiles in one run, the reliable 50%max cell offers half the reliable
    maximum, not half the default one."""
    finished = [{"scenario": "latency", "backend": "redis-raw", "round": 1, "profile": profile,
                 "params": {"rate": None, "rate_label": "max"}, "status": "ok",
                 "metrics": {"jobs_per_s": top}}
                for profile, top in (("default", 1000.0), ("reliable", 200.0))]
    for profile, half in (("reliable", 100.0), ("default", 500.0)):
        cells = LATENCY.plan("redis-raw", RunOptions(quick=True, profile=profile))
        cell = next(c for c in cells if c.params["rate_label"] == "50%max")
        assert LATENCY.resolve(cell, finished, 1).params["rate"] == half
    cells = LATENCY.plan("redis-raw", RunOptions(quick=True, profile="tuned"))
    with pytest.raises(CellFailed, match="this backend and profile"):
        LATENCY.resolve(next(c for c in cells if c.params["rate_label"] == "50%max"),
                        finished, 1)
