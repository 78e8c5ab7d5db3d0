"""The self-test's ceiling check on known drains: the ratio per probe loop is shown
beside the plain ratio when the speed meter timed every drain; the verdict stays on
the plain one (the two sides load the cores differently)."""

from __future__ import annotations

import ast
import contextlib
import os
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness import ceiling_bare, ceiling_check
from harness.speed import SAMPLE_DTYPE, SpeedMeter
from tests.conftest import REPO

SLOW_FROM = 1_000  # the machine ran 1.25x slower from this time on (ns)


def meter_with_samples(tmp_path: Path) -> SpeedMeter:
    meter = SpeedMeter(tmp_path)
    meter.cpus = [0]
    samples = [(t, 400_000 if t < SLOW_FROM else 500_000) for t in range(0, 2_000, 10)]
    meter.file(0).write_bytes(np.array(samples, dtype=SAMPLE_DTYPE).tobytes())
    return meter


CellRunner = Callable[[int, Any], dict[str, Any]]


@pytest.fixture
def run_cell(monkeypatch: pytest.MonkeyPatch) -> CellRunner:
    """Ceiling drains in the slow stretch at 800 jobs/s, bare loops in the fast one at
    1,000/s forked and 900/s exec'd: the same work per probe loop."""
    windows = iter([(1_000 + 100 * n, 1_100 + 100 * n) for n in range(ceiling_check.ROUNDS)])
    bare_windows = iter([(50 * n, 50 + 50 * n) for n in range(2 * ceiling_check.ROUNDS)])
    monkeypatch.setattr(ceiling_check, "sweep", lambda *_args: {"2": 900.0})
    monkeypatch.setattr(ceiling_check, "ceilings_by_broker", lambda: {"redis": "redis-raw"})

    def bare(*args: Any) -> dict[str, float]:
        start, end = next(bare_windows)
        rate = 1000.0 if args[5] == "fork" else 900.0
        return {"jobs_per_s": rate, "start_ns": start, "end_ns": end}

    monkeypatch.setattr(ceiling_check, "bare_drain", bare)

    def ceiling_drain(_round: int, _cell: Any) -> dict[str, Any]:
        return {"status": "ok", "metrics": {"jobs_per_s": 800.0, "drain_ns": list(next(windows))}}

    return ceiling_drain


def check(run_cell: CellRunner, meter: SpeedMeter | None) -> dict[str, Any]:
    return ceiling_check.check_ceiling(run_cell, lambda *_a, **_k: None, "redis", "redis://x",
                                       meter=meter)


def test_each_drain_is_also_shown_per_probe_loop(run_cell: CellRunner, tmp_path: Path) -> None:
    row = check(run_cell, meter_with_samples(tmp_path))
    assert row["ratio"] == pytest.approx(0.8)
    assert row["ratio_per_loop"] == pytest.approx(1.0)
    assert row["ceiling_probe_us"] == [500.0] * ceiling_check.ROUNDS
    assert row["bare_probe_us"] == [400.0] * ceiling_check.ROUNDS
    assert row["passed"] is False  # judged on the plain ratio


def test_the_exec_started_loop_splits_the_gap(run_cell: CellRunner) -> None:
    """The forked loop's edge over the exec'd one is the start method's; the rest of the
    gap is the harness's. The verdict stays against the forked loop."""
    row = check(run_cell, None)
    assert row["bare_exec_loop_per_s"] == [900.0] * ceiling_check.ROUNDS
    assert row["exec_over_fork"] == pytest.approx(0.9)
    assert row["ratio_to_exec"] == pytest.approx(0.889, abs=1e-3)
    assert row["ratio"] == pytest.approx(0.8) and row["passed"] is False


def test_each_round_keeps_the_verdicts_drains_adjacent() -> None:
    for order in ceiling_check.ORDERS:
        assert abs(order.index("ceiling") - order.index("bare")) == 1
    assert ceiling_check.ORDERS[0] == ceiling_check.ORDERS[1][::-1]


def test_without_the_meter_there_is_no_ratio_per_loop(run_cell: CellRunner) -> None:
    row = check(run_cell, None)
    assert row["ratio_per_loop"] is None
    assert row["ceiling_probe_us"] == [None] * ceiling_check.ROUNDS
    assert row["ratio"] == pytest.approx(0.8) and row["passed"] is False


def test_the_verdict_is_the_median_of_adjacent_pair_ratios(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    """Each pair's two drains share a stretch of machine speed, and each side runs first
    in half of the pairs; the ratio of the sides' medians would mix drains of different
    stretches (here 807.5 / 750)."""
    # drain by drain: ceiling, forked, exec'd; then exec'd, forked, ceiling...
    speeds = iter([1.0, 1.0, 1.0, 0.5, 0.5, 0.6, 1.0, 0.8, 0.8, 0.7, 0.7, 0.7])
    monkeypatch.setattr(ceiling_check, "ROUNDS", 4)
    monkeypatch.setattr(ceiling_check, "sweep", lambda *_args: {"2": 900.0})
    monkeypatch.setattr(ceiling_check, "ceilings_by_broker", lambda: {"redis": "redis-raw"})
    monkeypatch.setattr(ceiling_check, "bare_drain", lambda *_a: {
        "jobs_per_s": 1000.0 * next(speeds), "start_ns": 0, "end_ns": 1})
    row = ceiling_check.check_ceiling(
        lambda *_a: {"status": "ok", "metrics": {"jobs_per_s": 950.0 * next(speeds),
                                                  "drain_ns": [0, 1]}},
        lambda *_a, **_k: None, "redis", "redis://x")
    assert row["ceiling_bare_mode_per_s"] == pytest.approx([950.0, 570.0, 950.0, 665.0])
    assert row["bare_loop_per_s"] == pytest.approx([1000.0, 500.0, 800.0, 700.0])
    assert row["pair_ratios"] == [0.95, 1.14, 1.188, 0.95]
    assert row["ratio"] == pytest.approx((0.95 + 1.14) / 2) and row["passed"] is True


def test_a_failed_bare_loop_fails_the_row_with_its_reason(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.setattr(ceiling_check, "sweep", lambda *_args: {"2": 900.0})
    monkeypatch.setattr(ceiling_check, "ceilings_by_broker", lambda: {"redis": "redis-raw"})

    def failing(*_args: Any) -> dict[str, float]:
        raise ceiling_bare.BareLoopError("the exec bare redis loop failed: refused")

    monkeypatch.setattr(ceiling_check, "bare_drain", failing)
    row = ceiling_check.check_ceiling(
        lambda *_a: {"status": "ok", "metrics": {"jobs_per_s": 950.0, "drain_ns": [0, 1]}},
        lambda *_a, **_k: None, "redis", "redis://x")
    assert row["status"] == "failed" and row["reason"].endswith("refused")


def test_exec_consumers_that_cannot_start_fail_the_drain_and_are_reaped() -> None:
    """A consumer that dies before it connects (here: a broker with no loop) ends the
    drain with an error, and no consumer is left running."""
    before = children()
    with pytest.raises(ceiling_bare.BareLoopError, match="did not connect"):
        ceiling_bare.executed("no-such-broker", "x://", 2)
    assert children() == before


def children() -> set[str]:
    """Pids of this process's children (other tests' fixtures may hold some)."""
    return {pid for task in Path(f"/proc/{os.getpid()}/task").iterdir()
            for pid in (task / "children").read_text().split()}


def test_an_unknown_start_method_is_refused() -> None:
    with pytest.raises(ValueError, match="valid: fork, exec"):
        ceiling_bare.drain("redis", "redis://x", 1, 1, "spawn")


def test_the_bare_loop_opens_as_many_connections_as_the_ceiling_consumes_with():
    # redis-raw and pg-raw: a connection per slot; amqp-raw: one per process, whose
    # prefetch covers its slots (adapters/amqp_raw/worker.py)
    assert ceiling_check.bare_layout("redis", 8, 2) == (8, {})
    assert ceiling_check.bare_layout("postgres", 8, 4) == (8, {})
    assert ceiling_check.bare_layout("amqp", 8, 2) == (2, {"prefetch": 16})
    assert ceiling_check.bare_layout("amqp", 8, 8) == (8, {"prefetch": 4})


def test_the_printed_verdict_says_it_is_a_median_of_paired_ratios() -> None:
    """302,151 / 327,752 is 0.92x, yet the verdict was 0.88x: the median of the rounds'
    paired ratios. The line says so and gives their range."""
    from harness.selftest import render_ceilings
    row = {"status": "ok", "backend": "redis-raw", "processes": 4, "consumers": 8,
           "ceiling_bare_mode_per_s": [302_151.0] * 4, "bare_loop_per_s": [327_752.0] * 4,
           "pair_ratios": [0.85, 1.035, 0.714, 0.907], "ratio": 0.88, "passed": False,
           "goal": 0.9, "jobs": 936310, "sweep": {2: 250_000.0}}
    (line,) = render_ceilings({"redis": row})
    assert "0.88x" in line and "median of 4 adjacent pairs' ratios, 0.71x to 1.03x" in line
    assert "936,310 jobs" in line


def module_constants(path: Path) -> dict[str, object]:
    """The module-level NAME = literal assignments of a source file, without importing it
    (the ceilings' modules import their broker clients, which live in .venvs/)."""
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                with contextlib.suppress(ValueError):
                    found[target.id] = ast.literal_eval(node.value)
    return found


def test_the_bare_loops_fetch_and_ack_as_the_ceilings_do() -> None:
    """The bare loops are only a yardstick for the ceilings while they fetch the same
    batch (redis-raw), prefetch and ack as often (amqp-raw)."""
    amqp = module_constants(REPO / "adapters" / "amqp_raw" / "adapter.py")
    redis = module_constants(REPO / "adapters" / "redis_raw" / "worker.py")
    assert ceiling_bare.BATCH == redis["BATCH"]
    assert ceiling_bare.PREFETCH == amqp["PREFETCH"]
    assert ceiling_bare.ACK_EVERY == amqp["ACK_EVERY"]


READ_BACK = {  # the bare loop's queue, read back with the broker's own client
    "redis": "import redis; bodies = redis.Redis.from_url(URL).lrange('qb-bare', 0, -1)",
    "amqp": ("import pika; ch = pika.BlockingConnection(pika.URLParameters(URL)).channel(); "
             "bodies = [ch.basic_get('qb-bare', auto_ack=True)[2] for _ in range(N)]"),
    "postgres": ("import psycopg; bodies = [bytes(r[0]) for r in psycopg.connect(URL)"
                 ".execute('SELECT body FROM \"qb-bare\"')]"),
}


@pytest.mark.parametrize(("broker", "backend"), [("redis", "redis-raw"), ("amqp", "amqp-raw"),
                                                  ("postgres", "pg-raw")])
def test_the_bare_loop_preloads_distinct_jobs_in_the_ceilings_format(brokers: Any, broker: str,
                                                                     backend: str) -> None:
    """One constant message made the bare RabbitMQ loop about 1.4x faster than distinct
    jobs do: the bare loop must carry what the ceilings carry."""
    import json
    import subprocess

    from adapters import BACKENDS
    from harness.envs import python_of
    from tests.conftest import broker_url

    url, jobs = broker_url(brokers, broker), 50
    script = (f"import json; from harness.ceiling_bare import LOOPS; URL, N = {url!r}, {jobs}; "
              f"LOOPS[{broker!r}][0](URL, N); {READ_BACK[broker]}; "
              "print(json.dumps([b.decode() for b in bodies]))")
    done = subprocess.run([str(python_of(BACKENDS[backend].family)), "-c", script], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=True)
    messages = [json.loads(body) for body in json.loads(done.stdout)]
    assert len({m["id"] for m in messages}) == jobs
    assert all(m["spec"] == {"kind": "noop", "ms": 0} and m["p"] == "" for m in messages)


def test_the_consumers_cpu_per_job_is_compared_pair_by_pair(monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """The drains' CPU per job goes into the row side by side; the ratio is the bare
    loop's over the ceiling's, round by round (above 1: the ceiling spends less)."""
    cpus = iter([20.0, 19.0, 21.0, 22.0, 20.0, 24.0, 20.0, 18.0, 19.0, 21.0, 22.0, 22.0])
    monkeypatch.setattr(ceiling_check, "sweep", lambda *_args: {2: 900.0})
    monkeypatch.setattr(ceiling_check, "ceilings_by_broker", lambda: {"amqp": "amqp-raw"})
    monkeypatch.setattr(ceiling_check, "bare_drain", lambda *_a: {
        "jobs_per_s": 1000.0, "start_ns": 0, "end_ns": 1, "cpu_us_per_job": next(cpus)})
    row = ceiling_check.check_ceiling(
        lambda *_a: {"status": "ok", "metrics": {"jobs_per_s": 950.0, "drain_ns": [0, 1],
                                                  "cpu_us_per_job": next(cpus)}},
        lambda *_a, **_k: None, "amqp", "amqp://x")
    # drain order: ceiling, forked, exec'd; exec'd, forked, ceiling; ...
    assert row["cpu_us_per_job"] == {"ceiling": [20.0, 24.0, 20.0, 22.0],
                                     "bare": [19.0, 20.0, 18.0, 22.0],
                                     "bare_exec": [21.0, 22.0, 19.0, 21.0]}
    assert row["cpu_ratio"] == pytest.approx(statistics.median(
        [19 / 20, 20 / 24, 18 / 20, 22 / 22]), abs=1e-3)
    from harness.selftest import render_ceilings
    lines = render_ceilings({"amqp": {**row, "bare_settings": {"prefetch": 16}}})
    assert any("consumer CPU per job (median): amqp-raw 21.0 us, forked loop 19.5 us"
               in line for line in lines), lines


def test_without_every_drains_cpu_there_is_no_cpu_ratio(run_cell: CellRunner) -> None:
    row = check(run_cell, None)  # these drains report no CPU
    assert row["cpu_ratio"] is None
    assert row["cpu_us_per_job"]["ceiling"] == [None] * ceiling_check.ROUNDS
