"""The payload scenario's smallest size is the throughput scenario's noop cell: the
same workload, reused within a round, and the idle probes after the window analysed apart."""

from __future__ import annotations

import pytest

from core.recorder import Event
from scenarios.base import CellReused, RunOptions
from scenarios.latency import LATENCY
from scenarios.payload import PAYLOAD
from scenarios.throughput import NOOP_PAYLOAD_BYTES, THROUGHPUT
from tests.test_scenario_declarations import MS, STEADY, job_rows, records, report

QUICK = RunOptions(quick=True)


def finished_noop(**changes: object) -> dict:
    cell = {"scenario": "throughput", "backend": "rq", "round": 1, "profile": "default",
            "status": "ok", "cell_dir": "cells/0001", "settings": {"slots": 8},
            "params": {"duration_ms": 0, "slots": 8, "window_s": 2.0},
            "metrics": {"jobs_per_s": 500.0, "efficiency": None, "ideal_jobs_per_s": None,
                        "latency_ms": {"p50": 1.0, "p99": 2.0}, "latency_samples": 5}}
    return {**cell, **changes}


def test_the_smallest_payload_cell_is_the_throughput_noop_cell() -> None:
    noop = next(c for c in THROUGHPUT.plan("rq", QUICK) if c.params["duration_ms"] == 0)
    sizes = {c.params["payload_bytes"]: c for c in PAYLOAD.plan("rq", QUICK)}
    assert min(sizes) == NOOP_PAYLOAD_BYTES
    assert sizes[NOOP_PAYLOAD_BYTES].workload == noop.workload
    assert noop.workload["payload_bytes"] == NOOP_PAYLOAD_BYTES
    assert [p["type"] for p in noop.workload["phases"]] == ["sustained", "idle"]
    top = next(c for c in LATENCY.plan("rq", QUICK) if c.params["rate_label"] == "max")
    assert top.workload == noop.workload


def test_payload_reuses_the_noop_cell_of_its_round_with_its_own_metrics() -> None:
    cells = {c.params["payload_bytes"]: c for c in PAYLOAD.plan("rq", QUICK)}
    with pytest.raises(CellReused) as reused:
        PAYLOAD.resolve(cells[NOOP_PAYLOAD_BYTES], [finished_noop()], 1)
    metrics = reused.value.source["metrics"]
    assert metrics["jobs_per_s"] == 500.0 and metrics["latency_samples"] == 5
    assert "efficiency" not in metrics and "ideal_jobs_per_s" not in metrics
    big = cells[1024 * 1024]
    assert PAYLOAD.resolve(big, [finished_noop()], 1) is big
    small = cells[NOOP_PAYLOAD_BYTES]
    for other in (finished_noop(round=2), finished_noop(status="failed"),
                  finished_noop(params={"duration_ms": 10, "slots": 8, "window_s": 2.0}),
                  finished_noop(params={"duration_ms": 0, "slots": 4, "window_s": 2.0}),
                  finished_noop(backend="arq"), finished_noop(profile="reliable")):
        assert PAYLOAD.resolve(small, [other], 1) is small


def test_the_idle_probes_are_neither_counted_nor_in_the_window() -> None:
    """100 window jobs, then 5 probes 10 s later that start 3 ms after they are meant to."""
    window = job_rows(range(100), 0)
    probes = [(job, int(event), 0, 100, 10_000 * MS + i * 50 * MS + (3 * MS if k >= 2 else k))
              for i, job in enumerate(range(1000, 1005))
              for k, event in enumerate((Event.INTENDED, Event.SENT, Event.START, Event.END))]
    frame = records(window + probes)
    driver = report(STEADY, {"type": "idle", "first_id": 1000})
    noop = next(c for c in THROUGHPUT.plan("rq", QUICK) if c.params["duration_ms"] == 0)
    metrics = THROUGHPUT.analyze(noop, frame, driver)
    assert metrics["completed"] == 100
    assert metrics["window_jobs"] == 100
    assert metrics["latency_samples"] == 5
    assert metrics["latency_ms"]["p50"] == pytest.approx(3.0, rel=0.01)
    payload = PAYLOAD.analyze(next(iter(PAYLOAD.plan("rq", QUICK))), frame, driver)
    assert {k: payload[k] for k in ("completed", "latency_samples")} == {
        "completed": 100, "latency_samples": 5}


def test_latency_max_reuses_the_noop_window_without_the_probes_latency() -> None:
    """The idle probes' latency is not the latency at the maximum rate."""
    top = next(c for c in LATENCY.plan("rq", QUICK) if c.params["rate_label"] == "max")
    with pytest.raises(CellReused) as reused:
        LATENCY.resolve(top, [finished_noop()], 1)
    metrics = reused.value.source["metrics"]
    assert metrics["jobs_per_s"] == 500.0
    assert "latency_ms" not in metrics and "latency_samples" not in metrics


@pytest.mark.parametrize("quick", [True, False])
def test_noop_fills_are_held_by_the_job_cap_and_larger_payloads_by_the_byte_budget(
        quick: bool) -> None:
    from core.protocol import SustainedPhase
    from scenarios.throughput import GRIDS, noop_workload

    options = RunOptions(quick=quick)
    noop = noop_workload(NOOP_PAYLOAD_BYTES, options)[0]["phases"][0]
    larger = noop_workload(1024, options)[0]["phases"][0]
    assert noop["max_backlog_bytes"] // NOOP_PAYLOAD_BYTES == SustainedPhase().max_jobs
    assert larger["max_backlog_bytes"] == GRIDS.pick(options).budget_mib * 1024 * 1024
