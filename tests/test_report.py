"""The comparison report, rendered from summary.json fixtures that follow docs/results-schema.md.

The fixture holds every scenario with plausible numbers, failed and
skipped cells, and can be cut short like an interrupted run. The slow test
opens the page in headless Chromium.
"""

from __future__ import annotations

import html
import json
import re
import struct
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.results import ResultsError, aggregate
from reports import main, render
from reports.claims import ClaimFormatError, evaluate_all, load_claims
from reports.data import load
from scenarios.stats import encode, histogram_of, percentiles_ms

SLOTS = 8
ROUNDS = 2
BACKENDS = ["asyncio", "redis-raw", "amqp-raw", "celery-redis", "dramatiq-redis", "arq", "rq"]
SKIPPED = {"amqp-raw": "rabbitmq-server not found: apt-get install rabbitmq-server"}
RNG = np.random.default_rng(7)

# jobs/s at 0, 1, 10, 100 ms (ideal: 8000, 800, 80 with 8 slots)
THROUGHPUT = {"asyncio": (61000, 7400, 785, 79.6), "redis-raw": (9100, 5400, 760, 79.4),
              "celery-redis": (1800, 1500, 700, 78.8), "dramatiq-redis": (2600, 2000, 720, 79.0),
              "arq": (1200, 1000, 520, 76.0), "rq": (190, 180, 160, 62.0)}
# idle median queue latency in ms; the max rate is about throughput at 0 ms
LATENCY_MS = {"asyncio": 0.04, "redis-raw": 0.35, "celery-redis": 2.6, "dramatiq-redis": 1.9,
              "arq": 260.0, "rq": 110.0}
PAYLOAD_BYTES = (64, 1024, 16384, 262144, 1048576)
MEMORY_OVERHEAD = {"asyncio": 610, "redis-raw": 95, "celery-redis": 1480,
                   "dramatiq-redis": 720, "arq": 340, "rq": 1900}
# job-process-kill lost/duplicated per (backend, mode); broker-kill lost per persistence
WORKER_KILL = {("redis-raw", "default"): (8, 0), ("redis-raw", "reliable"): (0, 0),
               ("celery-redis", "default"): (4, 0), ("celery-redis", "reliable"): (0, 1),
               ("dramatiq-redis", "default"): (0, 2), ("dramatiq-redis", "reliable"): (0, 2),
               ("arq", "default"): (0, 3), ("arq", "reliable"): (0, 3),
               ("rq", "default"): (1, 0), ("rq", "reliable"): (1, 0)}
BROKER_KILL = {"redis-raw": (1000, 0, 0), "celery-redis": (1000, 12, 0),
               "dramatiq-redis": (1000, 0, 0), "arq": (1000, 0, 0), "rq": (1000, 0, None)}


def jitter(value: float, pct: float = 3.0) -> float:
    return float(value * (1 + RNG.uniform(-pct, pct) / 100))


def cell(scenario: str, backend: str, params: dict[str, Any], rnd: int,
         metrics: dict[str, Any] | None = None, status: str = "ok", reason: str | None = None,
         profile: str = "default") -> dict[str, Any]:
    settings = {} if status == "skipped" else {
        "processes": 1, "concurrency_per_process": SLOTS,
        "acks": "late" if profile == "reliable" else "early",
        "results": False, "slots": SLOTS, "profile": profile, "bulk_enqueue": False}
    return {"scenario": scenario, "backend": backend, "profile": profile, "params": params,
            "round": rnd, "status": status, "reason": reason, "settings": settings,
            "metrics": metrics if status == "ok" else {},
            "cell_dir": f"cells/{scenario}-{backend}-{rnd}"}


def throughput_cells(backend: str, rnd: int) -> list[dict[str, Any]]:
    out = []
    for duration, rate in zip((0, 1, 10, 100), THROUGHPUT[backend], strict=True):
        params = {"duration_ms": duration, "slots": SLOTS, "jobs": 3000 if duration == 0 else
                  min(3000, SLOTS * 3000 // duration)}
        if backend == "rq" and duration == 0:
            out.append(cell("throughput", backend, params, rnd, status="failed",
                            reason="timed out after 98s; last driver output: 2,100 jobs done"))
            continue
        if backend == "celery-redis" and duration == 0 and rnd == 2:
            out.append(cell("throughput", backend, params, rnd, status="failed",
                            reason="worker exited with code 1"))
            continue
        ideal = SLOTS * 1000 / duration if duration else None
        got = jitter(rate)
        out.append(cell("throughput", backend, params, rnd, {
            "jobs_per_s": got, "enqueue_per_s": jitter(rate * 3), "ideal_jobs_per_s": ideal,
            "efficiency": got / ideal if ideal else None, "window_s": 2.7,
            "completed": params["jobs"], "errors": 0, "duplicated": 0, "timed_out": False}))
    return out


def latency_metrics(base_ms: float, load: float, samples: int = 1500) -> dict[str, Any]:
    queue_ms = RNG.lognormal(np.log(base_ms * (1 + load)), 0.6, samples)
    e2e_ms = queue_ms + base_ms * 0.2
    queue, e2e = histogram_of(queue_ms * 1e6), histogram_of(e2e_ms * 1e6)
    lag = percentiles_ms(histogram_of(RNG.exponential(20_000, samples)))
    return {"latency_ms": percentiles_ms(queue), "e2e_ms": percentiles_ms(e2e),
            "schedule_lag_ms": {"p50": lag["p50"], "p99": lag["p99"], "max": lag["max"]},
            "hdr": {"latency": encode(queue), "e2e": encode(e2e)}, "samples": samples}


def latency_cells(backend: str, rnd: int) -> list[dict[str, Any]]:
    top = jitter(THROUGHPUT[backend][0])
    base = LATENCY_MS[backend]
    out = [cell("latency", backend, {"rate": None, "rate_label": "max"}, rnd,
                {"jobs_per_s": top, "window_s": 2.0, "completed": 3000, "errors": 0,
                 "duplicated": 0}),
           cell("latency", backend, {"rate": None, "rate_label": "idle"}, rnd,
                {**latency_metrics(base, 0.0, 30), "saturated": False, "completed": 30})]
    for rate, label in ((50.0, "50/s"), (200.0, "200/s"), (1000.0, "1000/s"),
                        (round(top * 0.5, 1), "50%max"), (round(top * 0.8, 1), "80%max")):
        params = {"rate": rate, "rate_label": label, "duration_s": 2.0}
        load = rate / top
        if load > 1.0:
            out.append(cell("latency", backend, params, rnd, {
                "achieved_per_s": top, "saturated": True, "backlog": int((rate - top) * 2),
                "latency_ms": None, "e2e_ms": None, "completed": int(top * 2),
                "schedule_lag_ms": {"p50": 0.02, "p99": 0.3, "max": 1.0}}))
            continue
        out.append(cell("latency", backend, params, rnd, {
            **latency_metrics(base, 3 * load ** 2), "achieved_per_s": rate,
            "saturated": False, "backlog": 0, "completed": int(rate * 2)}))
    return out


def payload_cells(backend: str, rnd: int) -> list[dict[str, Any]]:
    out = []
    for size in PAYLOAD_BYTES:
        params = {"payload_bytes": size, "slots": SLOTS, "jobs": max(50, min(1500,
                                                                           2 ** 25 // size))}
        if backend == "arq" and size == 1048576:
            out.append(cell("payload", backend, params, rnd, status="failed",
                            reason="only 12 jobs ended (at least 20 needed)"))
            continue
        wire = 1 + size / 40_000  # bigger jobs cost more broker and pickling time
        rate = THROUGHPUT[backend][0] / wire if backend != "asyncio" else 50_000 / (1 + size / 1e6)
        base = LATENCY_MS[backend] * (1 + size / 200_000)
        out.append(cell("payload", backend, params, rnd, {
            "jobs_per_s": jitter(rate), "enqueue_per_s": jitter(rate * 2.5),
            "latency_ms": {"p50": jitter(base), "p99": jitter(base * 2.4)},
            "latency_samples": 10, "completed": params["jobs"], "errors": 0,
            "duplicated": 0}))
    return out


def memory_cells(backend: str, rnd: int) -> list[dict[str, Any]]:
    out = []
    for size in (64, 1024, 16384):
        params = {"payload_bytes": size, "jobs": min(5000, 2 ** 26 // size)}
        if backend == "arq" and size == 16384:
            out.append(cell("memory", backend, params, rnd, status="failed",
                            reason="used_memory fell while filling (eviction?)"))
            continue
        per_job = size * (1.0 if backend != "celery-redis" else 1.34) + jitter(
            MEMORY_OVERHEAD[backend], 2)
        out.append(cell("memory", backend, params, rnd, {
            "bytes_per_job": per_job, "overhead_bytes_per_job": per_job - size,
            "broker_bytes": per_job * params["jobs"],
            "measured": "driver RSS" if backend == "asyncio" else "redis used_memory"}))
    return out


def crash_cells(backend: str, rnd: int) -> list[dict[str, Any]]:
    if backend == "asyncio":
        return [cell("crash-recovery", backend, {"fault": "job-process-kill", "mode": m,
                                                 "persistence": None, "jobs": 200}, rnd,
                     status="skipped", reason="in-process baseline: no worker process to kill",
                     profile=m) for m in ("default", "reliable")]
    out = []
    for mode in ("default", "reliable"):
        lost, dup = WORKER_KILL[(backend, mode)]
        out.append(cell("crash-recovery", backend, {"fault": "job-process-kill", "mode": mode,
                                                    "persistence": None, "jobs": 200}, rnd, {
            "completed": 200 - lost, "lost": lost, "duplicated": dup,
            "recovery_s": {"first": 0.4, "last": 1.9},
            "explanation": "unacked jobs returned" if lost == 0 else "jobs acked before run"},
            profile=mode))
    for setting, lost in zip(("off", "aof-everysec", "aof-always"), BROKER_KILL[backend],
                             strict=True):
        params = {"fault": "broker-kill", "mode": "default", "persistence": setting,
                  "jobs": 1000}
        if lost is None:
            out.append(cell("crash-recovery", backend, params, rnd, status="failed",
                            reason="redis-server did not come back within 30 s"))
            continue
        out.append(cell("crash-recovery", backend, params, rnd, {
            "completed": 1000 - lost, "lost": lost, "duplicated": 0,
            "recovery_s": {"first": 1.2, "last": 3.5},
            "explanation": f"appendonly={'no' if setting == 'off' else setting}"}))
    return out


def scaling_cells(backend: str, rnd: int) -> list[dict[str, Any]]:
    """10 ms jobs scale with the slots up to the backend's 8-slot figure x 1.5; noop stays flat."""
    out = []
    for slots in (1, 4, 16):
        for duration in (0, 10):
            got = jitter(THROUGHPUT[backend][0] if duration == 0
                         else min(slots * 95, THROUGHPUT[backend][2] * 1.5))
            out.append(cell("scaling", backend, {"duration_ms": duration, "slots": slots,
                                                 "window_s": 2.0}, rnd, {
                "jobs_per_s": got, "per_slot_jobs_per_s": got / slots, "cpu_count": 8,
                "efficiency": got * duration / 1000 / slots if duration else None}))
    return out


BUILDERS = {"throughput": throughput_cells, "latency": latency_cells, "payload": payload_cells,
            "memory": memory_cells, "crash-recovery": crash_cells, "scaling": scaling_cells}


def run_info(cells: int, complete: bool = True) -> dict[str, Any]:
    return {
        "id": "fixture", "started": "2026-01-02T03:04:05Z", "finished": "2026-01-02T04:00:00Z",
        "host": "bench-host", "cpu_count": 8, "platform": "Linux-6.1-x86_64-with-glibc2.36",
        "python": "3.11.7", "git_revision": "0123456789abcdef0123456789abcdef01234567",
        "config": {"scenarios": list(BUILDERS), "backends": BACKENDS, "rounds": ROUNDS,
                   "quick": False, "slots": SLOTS, "profile": "default", "results": False,
                   "profiles": ["default", "reliable"], "broker_urls": {}},
        "library_versions": {"core": {"queuebench": "0.1.0", "pandas": "3.1.1"},
                             "redis": {"redis": "8.1.0"},
                             "celery": {"celery": "5.7.0", "kombu": "5.7.0", "redis": "8.1.0"},
                             "dramatiq": {"dramatiq": "2.2.1", "redis": "8.1.0", "pika": "1.4.4"},
                             "arq": {"arq": "0.28.0", "redis": "5.3.1"},
                             "rq": {"rq": "2.12.0", "redis": "8.1.0"}},
        "broker_versions": {"redis": "7.0.15"}, "brokers": {"redis": "redis://127.0.0.1:40123/0"},
        "complete": complete, "interrupted": None if complete else "SIGINT",
        "planned_cells": cells,
    }


def all_cells() -> list[dict[str, Any]]:
    cells = []
    for rnd in range(1, ROUNDS + 1):
        for scenario, build in BUILDERS.items():
            for backend in BACKENDS:
                if backend in SKIPPED:  # planned like any backend, then skipped
                    cells += [cell(scenario, backend, c["params"], rnd, status="skipped",
                                   reason=SKIPPED[backend], profile=c["profile"])
                              for c in build("redis-raw", rnd)]
                    continue
                cells += build(backend, rnd)
    return cells


def write_run(run_dir: Path, cells: list[dict[str, Any]], info: dict[str, Any]) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    summary = {"schema": 1, "run": info, "cells": cells, "aggregates": aggregate(cells)}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    (run_dir / "run.json").write_text(json.dumps(info, indent=1))
    return run_dir


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cells = all_cells()
    run_dir = write_run(tmp_path_factory.mktemp("full"), cells, run_info(len(cells)))
    render(run_dir)
    return run_dir


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cells = all_cells()
    kept = [c for c in cells if c["round"] == 1 and c["scenario"] in ("throughput", "latency")
            and c["backend"] != "rq"]
    run_dir = write_run(tmp_path_factory.mktemp("cut"), kept,
                        run_info(len(cells), complete=False))
    render(run_dir)
    return run_dir


def text_of(page: str) -> str:
    """Visible text, tags dropped, whitespace collapsed (for phrase checks)."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


# -- the page and its charts -------------------------------------------------------------
def test_report_and_charts_exist(full_run: Path) -> None:
    page = (full_run / "report.html").read_text()
    charts = sorted(p.name for p in (full_run / "charts").glob("*.png"))
    assert charts == sorted(["throughput_vs_duration.png", "latency_percentiles.png",
                             "latency_vs_rate.png", "payload.png", "memory.png",
                             "crash_job_process_kill.png", "crash_broker_kill.png",
                             "scaling_vs_slots.png"])
    for png in (full_run / "charts").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert page.count('<img src="data:image/png;base64,') == len(charts)


def test_report_is_self_contained(full_run: Path) -> None:
    page = (full_run / "report.html").read_text()
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", page), "external reference"
    assert "<script" not in page.lower()
    assert "@import" not in page and "url(" not in page


def test_verdict_table(full_run: Path) -> None:
    page = (full_run / "report.html").read_text()
    for table in ("throughput", "latency", "payload", "memory", "crash-recovery-job-process-kill",
                  "crash-recovery-broker-kill"):
        assert f'id="table-{table}"' in page, table
    text = text_of(page)
    assert "\u2605" in text, "no best marked"
    assert "ranges across rounds overlap" in text, "tie rule not stated"
    assert "p99 queue latency at 200/s" in text
    # a column for every size the run measured, smallest first (a quick run's 64 B too)
    sizes = [f"jobs/s at {label}" for label in ("64 B", "1 KiB", "16 KiB", "1 MiB")]
    assert all(size in text for size in sizes)
    assert [text.index(size) for size in sizes] == sorted(text.index(size) for size in sizes)
    assert "saturated" in text
    assert "reliable profile" in text and "persistence aof-everysec" in text
    assert "\u2717 8 lost" in text and "\u2713 0 lost" in text
    assert 'id="table-library-cost"' in page and "celery-redis vs redis-raw" in text


def test_failed_and_skipped_are_shown_never_zero(full_run: Path) -> None:
    text = text_of((full_run / "report.html").read_text())
    assert "skipped: rabbitmq-server not found" in text
    assert "failed: timed out after 98s" in text  # rq, no-op throughput, in the verdict table
    assert "failed: used_memory fell while filling" in text
    assert "rq (0 ms) \u2014 failed: timed out after 98s" in text  # the note under the chart
    assert "in-process baseline: no worker process to kill" in text
    data = load(full_run)
    rq_noop = data.scenario("throughput")
    rq_noop = rq_noop[(rq_noop["backend"] == "rq") & (rq_noop["params.duration_ms"] == 0)]
    assert rq_noop["status"].tolist() == ["failed"]
    assert "jobs_per_s" not in rq_noop or rq_noop["jobs_per_s"].isna().all()


def test_claims_section(full_run: Path) -> None:
    text = text_of((full_run / "report.html").read_text())
    for claim in load_claims():
        assert claim["claim"] in text
    results = {r.id: r for r in evaluate_all(load(full_run))}
    requeue = {f.subject: f for f in results["requeue-on-worker-death"].findings}
    assert requeue["redis-raw / default / job-process-kill"].verdict == "does not hold"
    assert requeue["redis-raw / reliable / job-process-kill"].verdict == "holds"
    assert requeue["redis-raw / default / job-process-kill"].figure.startswith(
        "8 of 200 jobs lost")
    assert results["requeue-on-worker-death"].verdict.startswith("holds for ")
    assert not any(s.startswith("asyncio") for s in requeue)  # no queue to re-queue to
    memory = {f.subject: f for f in results["one-kb-per-task"].findings}
    assert memory["celery-redis"].verdict == "holds"
    # about 1.5 kB of overhead each (jittered): the payloads are not counted
    assert re.search(r"100,000 jobs hold about 1[45]\d MB beyond their payloads$",
                     memory["celery-redis"].figure), memory["celery-redis"].figure
    assert "asyncio" not in memory  # no broker: not what the claim is about
    assert "redis-raw" not in memory  # a raw ceiling is not a task queue
    redis = {f.subject: f for f in results["redis-persistence"].findings}
    assert redis["dramatiq-redis"].verdict == "holds"
    assert redis["celery-redis"].verdict == "does not hold" and "aof-everysec: 12 lost" in \
        redis["celery-redis"].figure
    assert redis["rq"].verdict == "holds"  # aof-always failed: judged on the settings measured
    assert "aof-always failed: redis-server did not come back" in redis["rq"].figure
    fast = results["ten-thousand-per-second"]
    assert fast.verdict == "does not hold"
    assert all("with 8 slots" in f.figure for f in fast.findings if f.verdict == "does not hold")
    fifty = {f.subject: f for f in results["fifty-ms-too-fast"].findings}
    assert fifty["arq"].verdict == "holds" and fifty["asyncio"].verdict == "does not hold"
    assert "at offered load idle" in fifty["arq"].figure
    ceiling = {f.subject: f for f in results["broker-is-the-bottleneck"].findings}
    assert "asyncio" not in ceiling and "redis-raw" not in ceiling
    assert ceiling["celery-redis"].verdict == "does not hold"  # from its one ok round
    assert ceiling["rq"].verdict == "not measured in this run"  # its no-op cells failed
    assert "timed out" in ceiling["rq"].figure
    for result in results.values():
        assert result.findings and all(f.figure for f in result.findings)
    assert "does not hold" in text and "holds" in text


def test_environment_section(full_run: Path) -> None:
    text = text_of((full_run / "report.html").read_text())
    for needle in ("bench-host", "Linux-6.1-x86_64", "3.11.7", "0123456789abcdef",
                   "celery 5.7.0", "kombu 5.7.0", "redis 7.0.15", "acks=early", "acks=late",
                   "skipped because", "failed because",
                   "config.backends asyncio, redis-raw, amqp-raw"):
        assert needle in text, needle


def test_interrupted_run(interrupted_run: Path) -> None:
    page = (interrupted_run / "report.html").read_text()
    text = text_of(page)
    assert 'id="incomplete"' in page and "interrupted (SIGINT)" in text
    total = len(all_cells())
    done = len(load(interrupted_run).cells)
    assert f"{total - done} of {total} planned cells never ran" in text
    assert "No data at all for scenarios: payload, memory, crash-recovery" in text
    assert "No data at all for backend: rq" in text
    assert "rq not run (every column)" in text
    assert "Payload size: not measured in this run" in text
    assert "Crash recovery: not measured in this run" in text
    charts = sorted(p.name for p in (interrupted_run / "charts").glob("*.png"))
    assert charts == ["latency_percentiles.png", "latency_vs_rate.png",
                      "throughput_vs_duration.png"]
    assert "Each task message is about 1 KB" in text
    assert "not measured in this run" in text


def test_real_throughput_shape_without_other_scenarios(tmp_path: Path) -> None:
    """Only throughput, one round, no library backend: no cost table, no claims measured."""
    cells = [c for c in all_cells() if c["scenario"] == "throughput" and c["round"] == 1
             and c["backend"] in ("asyncio", "redis-raw")]
    run_dir = write_run(tmp_path / "run", cells, run_info(len(cells)))
    page = render(run_dir).read_text()
    text = text_of(page)
    assert "Library cost on top of the broker" in text and "Not measured in this run" in text
    assert "Latency: not measured in this run" in text
    assert 'id="incomplete"' not in page


def test_a_run_slowed_with_the_test_knob_says_so_at_the_top(tmp_path: Path) -> None:
    cells = [c for c in all_cells() if c["scenario"] == "throughput" and c["round"] == 1
             and c["backend"] in ("asyncio", "redis-raw")]
    info = run_info(len(cells))
    info["config"] = {**info.get("config", {}), "inject_delay_us": 4.5}
    page = render(write_run(tmp_path / "slowed", cells, info)).read_text()
    assert 'id="slowed"' in page
    assert page.index('id="slowed"') < page.index('id="verdicts"')
    assert "burnt 4.5 us of CPU on purpose" in text_of(page)
    info["config"]["inject_delay_us"] = 0
    assert 'id="slowed"' not in render(write_run(tmp_path / "plain", cells, info)).read_text()


def test_one_payload_size_gets_a_bar_per_backend(tmp_path: Path) -> None:
    """A quick run's memory cells hold one payload size: the chart is a bar per backend
    at that size, and a backend without a figure is named under it."""
    cells = [c for c in all_cells() if c["scenario"] == "memory" and c["round"] == 1
             and c["params"]["payload_bytes"] == 16384]
    from reports.sections import Kit
    from scenarios.memory import MEMORY
    (chart,) = MEMORY.charts(Kit(load(write_run(tmp_path / "run", cells,
                                                run_info(len(cells)))), MEMORY))
    assert chart.title == "Memory per queued job at 16 KiB payload"
    assert any(note.startswith("arq") and "eviction" in note for note in chart.notes)


@pytest.mark.parametrize("sizes", [(16384,), (64, 1024, 16384)])
def test_a_noisy_memory_figure_is_marked_in_its_chart(tmp_path: Path,
                                                      sizes: tuple[int, ...]) -> None:
    """A memory figure within the zero-job control's drift is hatched (one size, bars) or
    ringed (several sizes), and the legend says what the mark means."""
    cells = [c for c in all_cells() if c["scenario"] == "memory" and c["round"] == 1
             and c["params"]["payload_bytes"] in sizes and c["status"] == "ok"]
    for c in cells:
        c["metrics"]["noisy"] = c["backend"] == "celery-redis"
    from reports.sections import Kit
    from scenarios.memory import MEMORY

    class Drawn(Kit):
        figures: list[Any] = []

        def chart(self, slug: str, title: str, figure: Any, caption: str,
                  notes: list[str]) -> Any:
            self.figures.append(figure)
            return super().chart(slug, title, figure, caption, notes)

    kit = Drawn(load(write_run(tmp_path / "run", cells, run_info(len(cells)))), MEMORY)
    MEMORY.charts(kit)
    (figure,) = kit.figures
    labels = [t.get_text() for ax in figure.axes for legend in [ax.get_legend()] if legend
              for t in legend.get_texts()]
    assert any("noisy in a round" in label for label in labels), labels
    for c in cells:
        c["metrics"]["noisy"] = False
    kit = Drawn(load(write_run(tmp_path / "quiet", cells, run_info(len(cells)))), MEMORY)
    kit.figures = []
    MEMORY.charts(kit)
    labels = [t.get_text() for ax in kit.figures[0].axes for legend in [ax.get_legend()]
              if legend for t in legend.get_texts()]
    assert not any("noisy" in label for label in labels), labels


def throughput_marks(tmp_path: Path, rates: dict[str, float]) -> dict[str, Any]:
    """The throughput verdict table's entry per backend, one round at these rates."""
    cells = [cell("throughput", backend, {"duration_ms": 1, "slots": SLOTS, "jobs": 10}, 1,
                  {"jobs_per_s": rate}) for backend, rate in rates.items()]
    data_dir = write_run(tmp_path / "ties", cells, run_info(len(cells)))
    from reports.sections import Kit
    from scenarios.throughput import THROUGHPUT
    table = THROUGHPUT.tables(Kit(load(data_dir), THROUGHPUT))[0]
    return {name: entries[0] for name, entries in table.rows}


def test_the_workers_cpu_per_job_is_in_the_detail(tmp_path: Path) -> None:
    cells = [cell("throughput", backend, {"duration_ms": 0, "slots": SLOTS, "jobs": 10}, 1,
                  {"jobs_per_s": 400.0, "cpu_us_per_job": cpu})
             for backend, cpu in (("celery-redis", 2680.0), ("dramatiq-redis", 540.0))]
    from reports.sections import Kit
    from scenarios.throughput import THROUGHPUT
    table = THROUGHPUT.tables(Kit(load(write_run(tmp_path / "cpu", cells,
                                                 run_info(len(cells)))), THROUGHPUT))[0]
    details = {name: entries[0].detail for name, entries in table.rows}
    assert "workers' CPU 2.68 ms per job" in details["celery-redis"]
    assert "workers' CPU 540 µs per job" in details["dramatiq-redis"]


def test_ties_within_noise(tmp_path: Path) -> None:
    entries = throughput_marks(tmp_path, {"asyncio": 1000.0, "celery-redis": 1030.0,
                                          "rq": 700.0})
    marks = {name: entry.mark for name, entry in entries.items()}
    assert marks == {"celery-redis": "best-tie", "asyncio": "tie", "rq": ""}


def test_a_ceiling_is_a_yardstick_never_the_best(tmp_path: Path) -> None:
    """redis-raw drains fastest, but a reader cannot pick it: the star goes to the
    fastest backend they can, and the ceiling's figure says what it is."""
    entries = throughput_marks(tmp_path, {"redis-raw": 9000.0, "asyncio": 1000.0,
                                          "celery-redis": 600.0})
    marks = {name: entry.mark for name, entry in entries.items()}
    assert marks == {"redis-raw": "yardstick", "asyncio": "best", "celery-redis": ""}
    assert "ceiling, not ranked" in entries["redis-raw"].detail
    assert entries["redis-raw"].css == "num yardstick" and entries["redis-raw"].symbol == ""


@pytest.mark.parametrize("dry, lib, verdict", [
    ("redis-raw", 4500.0, "not measured in this run"),  # an upper-bound share that holds
    ("redis-raw", 900.0, "does not hold"),  # an upper-bound share that fails: it stands
    ("celery-redis", 900.0, "not measured in this run"),  # a lower-bound share that fails
    ("celery-redis", 4500.0, "holds"),  # a lower-bound share that holds: it stands
])
def test_a_claim_on_a_dry_window_decides_only_where_a_bound_can(
        tmp_path: Path, dry: str, lib: float, verdict: str) -> None:
    params = {"duration_ms": 0, "slots": SLOTS, "window_s": 2.0}
    cells = [cell("throughput", name, params, 1, {"jobs_per_s": rate,
                                                   "producer_bound": name == dry})
             for name, rate in (("celery-redis", lib), ("redis-raw", 5000.0))]
    data = load(write_run(tmp_path / "dry", cells, run_info(len(cells))))
    claims = [c for c in load_claims() if c["id"] == "broker-is-the-bottleneck"]
    (result,) = evaluate_all(data, claims)
    (finding,) = [f for f in result.findings if f.subject == "celery-redis"]
    assert finding.verdict == verdict
    if verdict == "not measured in this run":
        assert f"{dry}'s queue ran dry inside the window" in finding.figure
    fast = load_claims(json.dumps({"format": 1, "claims": [{
        "id": "fast", "claim": "c", "scenario": "throughput", "where": {"duration_ms": 0},
        "per": ["backend"], "metric": "jobs_per_s", "test": {"op": ">=", "value": 1000}}]}))
    (fast_result,) = evaluate_all(data, fast)
    verdicts = {f.subject: f.verdict for f in fast_result.findings}
    assert verdicts["redis-raw"] == "holds"  # dry or not, 5,000 is at least 1,000
    if dry == "celery-redis" and lib < 1000:
        assert verdicts["celery-redis"] == "not measured in this run"


def test_custom_claim_format(full_run: Path) -> None:
    claims = load_claims(json.dumps({"format": 1, "claims": [{
        "id": "any-fast", "claim": "Some queue does 5,000 no-op jobs per second.",
        "scenario": "throughput", "where": {"duration_ms": 0}, "per": [],
        "metric": "jobs_per_s", "stat": "max", "test": {"op": ">=", "value": 5000},
        "figure": "{backend}: {value:,.0f} jobs/s"}]}))
    (result,) = evaluate_all(load(full_run), claims)
    assert result.findings[0].subject == "all backends"
    with pytest.raises(ClaimFormatError):
        load_claims(json.dumps({"format": 1, "claims": [{"id": "x", "claim": "y",
                                                         "scenario": "memory"}]}))
    with pytest.raises(ClaimFormatError):
        load_claims(json.dumps({"format": 1, "claims": [{
            "id": "x", "claim": "y", "scenario": "memory", "evaluator": "nope"}]}))


# -- bad input ---------------------------------------------------------------------------
@pytest.mark.parametrize("content, message", [
    (None, "not a results directory"),
    ("{not json", "is not valid JSON"),
    ('{"schema": 99, "cells": []}', "unsupported schema"),
    ('{"schema": 1, "cells": [{"scenario": "x"}]}', "has no 'backend' string"),
    ('{"schema": 1, "cells": [{"scenario": "x", "backend": "y", "status": "odd", '
     '"params": {}}]}', "unknown status"),
    ('{"schema": 1, "cells": [], "aggregates": [{"scenario": "x"}]}', "malformed aggregates"),
    ('{"schema": 1, "cells": [], "aggregates": [{"scenario": "x", "backend": "y", '
     '"params": {}, "metrics": {"jobs_per_s": {"median": "fast"}}}]}', "not a number"),
])
def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               content: str | None, message: str) -> None:
    if content is not None:
        (tmp_path / "summary.json").write_text(content)
    with pytest.raises(ResultsError, match=message):
        render(tmp_path)
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_main_renders(full_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(full_run)]) == 0
    assert capsys.readouterr().out.strip() == str(full_run / "report.html")
    assert main([]) == 2


# -- a real browser ----------------------------------------------------------------------
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--no-first-run",
                  "--disable-component-update", "--disable-sync"]
# Test-only: after load, write each image's decoded width and every error event into the DOM.
PROBE = """<script>
window.__errors = [];
window.addEventListener('error', function (e) {
  window.__errors.push((e.target && e.target.tagName) ? 'resource ' + e.target.tagName
                       : String(e.message));
}, true);
window.addEventListener('load', function () {
  var out = document.createElement('pre');
  out.id = 'qb-probe';
  var widths = Array.prototype.map.call(document.images, function (i) {
    return (i.complete ? 'ok' : 'pending') + ':' + i.naturalWidth; });
  out.textContent = JSON.stringify({images: widths, errors: window.__errors});
  document.body.appendChild(out);
});
</script>"""


def chromium(args: list[str], tmp_path: Path, name: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{name}"
    profile.mkdir()
    return subprocess.run([str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                           "--enable-logging=stderr", "--v=0", *args], capture_output=True,
                          text=True, timeout=120)


def probed_copy(page: Path, tmp_path: Path, name: str) -> Path:
    """The page with the probe script allowed by its CSP and inserted first in <head>."""
    html = page.read_text().replace("default-src 'none';",
                                    "default-src 'none'; script-src 'unsafe-inline';")
    copy = tmp_path / name
    copy.write_text(html.replace("</style>", "</style>\n" + PROBE, 1))
    return copy


def probe(page: Path, tmp_path: Path, name: str) -> tuple[str, dict[str, Any], str]:
    done = chromium(["--virtual-time-budget=10000", "--dump-dom", page.as_uri()], tmp_path,
                    name)
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="qb-probe">(.*?)</pre>', done.stdout, re.S)
    assert found, "the probe did not run: " + done.stderr[-2000:]
    return done.stdout, json.loads(found.group(1).replace("&quot;", '"')), done.stderr


def console_errors(stderr: str) -> list[str]:
    """Chromium's console lines (logged at INFO whatever their level): the page has no
    script, so any console message (a CSP violation, an error) is a problem."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.mark.slow
def test_in_chromium(full_run: Path, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is not installed (python -m harness setup --test-tools)")
    shot = tmp_path / "shot.png"
    done = chromium([f"--screenshot={shot}", "--window-size=1280,4000",
                     (full_run / "report.html").as_uri()], tmp_path, "shot")
    assert shot.exists(), done.stderr[-2000:]
    head = shot.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", head[16:24]) == (1280, 4000)
    assert shot.stat().st_size > 100_000, "screenshot is nearly blank"
    console = console_errors(done.stderr)
    assert not console, console

    dom, found, stderr = probe(probed_copy(full_run / "report.html", tmp_path, "page.html"),
                               tmp_path, "dom")
    for section in ("verdicts", "library-cost", "charts", "claims", "environment", "cells"):
        assert f'<section id="{section}">' in dom, section
    sources = re.findall(r'<img [^>]*src="([^"]{0,30})', dom)
    assert len(sources) == 8 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert len(found["images"]) == 8
    assert all(w.startswith("ok:") and int(w[3:]) > 300 for w in found["images"]), found
    assert found["errors"] == [], found
    assert not console_errors(stderr), console_errors(stderr)


@pytest.mark.slow
def test_chromium_checks_catch_broken_pages(full_run: Path, tmp_path: Path) -> None:
    """The checks above must fail on an undecodable data: image and on a network reference."""
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is not installed (python -m harness setup --test-tools)")
    page = (full_run / "report.html").read_text()
    page = re.sub(r'src="data:image/png;base64,[^"]{40}',
                  'src="data:image/png;base64,' + "A" * 40, page, count=1)
    page = page.replace("</main>", '<img src="http://127.0.0.1:9/x.png" alt="x"></main>')
    broken = tmp_path / "broken.html"
    broken.write_text(page)
    _dom, found, stderr = probe(probed_copy(broken, tmp_path, "copy.html"), tmp_path, "bad")
    assert found["images"][0] == "ok:0", found  # loaded but nothing decoded
    assert found["errors"], found
    assert any("Content Security Policy" in line for line in console_errors(stderr)), stderr


def test_saturated_written_by_numpy_is_a_real_bool(tmp_path: Path) -> None:
    """A numpy bool metric is written as a JSON bool; an older summary holding the
    string "False" is not read as saturated."""
    import numpy as np

    from core.results import write_json
    from reports import data

    write_json(tmp_path / "x.json", {"flag": np.bool_(False), "n": np.int64(3),
                                     "rate": np.float64(1.5)})
    assert json.loads((tmp_path / "x.json").read_text()) == {"flag": False, "n": 3, "rate": 1.5}
    cells = [c for c in all_cells() if c["scenario"] == "latency" and c["round"] == 1
             and c["backend"] == "redis-raw"]
    for c in cells:
        if c["metrics"].get("saturated") is False:
            c["metrics"]["saturated"] = "False"
    loaded = data.load(write_run(tmp_path / "run", cells, run_info(len(cells))))
    fixed = loaded.groups[loaded.groups["params.rate_label"] == "200/s"]
    assert len(fixed) == 1 and not fixed["saturated"].iloc[0]


def test_a_producer_limited_rate_says_why_it_has_no_latency(tmp_path: Path) -> None:
    """A rate the producer could not offer has no latency: the charts name it
    producer-limited, not 'no data'."""
    from reports.charts import state_of

    cells = [c for c in all_cells() if c["scenario"] == "latency" and c["round"] == 1
             and c["backend"] == "redis-raw"]
    for c in cells:
        if c["params"]["rate_label"] == "200/s":
            c["metrics"].update(producer_limited=True, latency_ms=None,
                                explanation="offered 120 of 200 jobs/s")
    groups = load(write_run(tmp_path / "run", cells, run_info(len(cells)))).groups
    by_rate = {label: state_of(groups[groups["params.rate_label"] == label])
               for label in ("200/s", "idle")}
    assert by_rate == {"200/s": "producer-limited", "idle": "no data"}


def test_a_library_above_its_ceiling_in_one_round_is_named(tmp_path: Path) -> None:
    """Round 2 has celery-redis faster than redis-raw: the cost table says so, per round."""
    cells = []
    for rnd, lib, raw in ((1, 900.0, 5000.0), (2, 1200.0, 1100.0)):
        params = {"duration_ms": 0, "slots": SLOTS, "window_s": 2.0}
        cells += [cell("throughput", "celery-redis", params, rnd, {"jobs_per_s": lib}),
                  cell("throughput", "redis-raw", params, rnd, {"jobs_per_s": raw})]
    from reports.verdict import library_cost
    table = library_cost(load(write_run(tmp_path / "above", cells, run_info(len(cells)))),
                         {"celery-redis": "redis-raw"})
    (name, entries), = table.rows
    assert "ABOVE CEILING" in entries[0].text and "round 2" in entries[0].detail
    assert entries[0].mark == "bad"


@pytest.mark.parametrize("raw, above", [(758.0, False), (600.0, True)])
def test_sleeping_jobs_at_the_clocks_limit_are_not_above_the_ceiling(
        tmp_path: Path, raw: float, above: bool) -> None:
    """10 ms jobs on 8 slots: 800/s at most. A library 13 jobs/s over a ceiling at 95% of
    that is the clock's noise; over a ceiling at 75% of it, the ceiling is not one."""
    params = {"duration_ms": 10, "slots": SLOTS, "window_s": 2.0}
    cells = [cell("throughput", name, params, 1, {"jobs_per_s": rate, "ideal_jobs_per_s": 800.0})
             for name, rate in (("celery-redis", 771.0), ("redis-raw", raw))]
    from reports.verdict import library_cost
    table = library_cost(load(write_run(tmp_path / "clock", cells, run_info(len(cells)))),
                         {"celery-redis": "redis-raw"})
    (_, entries), = table.rows
    assert ("ABOVE CEILING" in entries[0].text) is above


def celery_share_of_flagged_ceiling(run_dir: Path, flag: str) -> Any:
    """celery-redis's library-cost entry against a redis-raw noop cell flagged `flag`."""
    from reports.verdict import library_cost
    params = {"duration_ms": 0, "slots": SLOTS, "window_s": 2.0}
    cells = [cell("throughput", "celery-redis", params, 1, {"jobs_per_s": 900.0}),
             cell("throughput", "redis-raw", params, 1, {"jobs_per_s": 5000.0, flag: True})]
    table = library_cost(load(write_run(run_dir, cells, run_info(len(cells)))),
                         {"celery-redis": "redis-raw"})
    (_, entries), = table.rows
    return entries[0]


def test_a_share_of_a_producer_bound_ceiling_says_the_ceiling_is_a_lower_bound(
        tmp_path: Path) -> None:
    entries = [celery_share_of_flagged_ceiling(tmp_path / "dry", "producer_bound")]
    assert entries[0].text == "18%"
    assert "redis-raw's queue ran dry inside the window in 1 of 1 rounds" in entries[0].detail
    assert "library's" not in entries[0].detail


@pytest.mark.parametrize(("library", "shown"), [(674.0, "0.36%"), (3_790.0, "2%"),
                                                 (24_500.0, "13%")])
def test_a_share_far_below_the_ceiling_keeps_two_figures(tmp_path: Path, library: float,
                                                        shown: str) -> None:
    """674 of 189,488 jobs/s is 0.36%, not "0%" (which would read as nothing ran)."""
    params = {"duration_ms": 0, "slots": SLOTS, "window_s": 2.0}
    cells = [cell("throughput", "celery-redis", params, 1, {"jobs_per_s": library}),
             cell("throughput", "redis-raw", params, 1, {"jobs_per_s": 189_488.0})]
    from reports.verdict import library_cost
    table = library_cost(load(write_run(tmp_path / "small", cells, run_info(len(cells)))),
                         {"celery-redis": "redis-raw"})
    (_, entries), = table.rows
    assert entries[0].text == shown


def test_latency_aggregates_merge_the_rounds_histograms() -> None:
    """A median of per-round p99s is not the p99 of all jobs: aggregates carry `merged`."""
    from scenarios.stats import merged_round_percentiles
    heavy = [1_000_000] * 950 + [50_000_000] * 50  # 5% at 50 ms: this round's p99 is 50
    light = [1_000_000] * 992 + [50_000_000] * 8  # 0.8%: p99 is 1 ms
    cells = [cell("latency", "rq", {"rate": 10}, rnd,
                  {"latency_ms": percentiles_ms(histogram_of(ns)),
                   "hdr": {"latency": encode(histogram_of(ns))}})
             for rnd, ns in ((1, heavy), (2, light), (3, light))]
    agg, = aggregate(cells, merged_round_percentiles)
    p99 = agg["metrics"]["latency_ms.p99"]
    assert p99["median"] == pytest.approx(1.0, rel=0.01)
    # all 3000 jobs: 66 at 50 ms = 2.2%, so the p99 of the run is 50 ms
    assert p99["merged"] == pytest.approx(50.0, rel=0.01)
    assert agg["metrics"]["latency_ms.max"]["merged"] == pytest.approx(50.0, rel=0.01)
    # a round that saturated has no latency: the rounds that kept up are still merged
    cells.append(cell("latency", "rq", {"rate": 10}, 4, {"latency_ms": None,
                                                         "saturated": True}))
    agg, = aggregate(cells, merged_round_percentiles)
    assert agg["metrics"]["latency_ms.p99"]["merged"] == pytest.approx(50.0, rel=0.01)


def test_an_unstable_window_is_said_in_the_table(tmp_path: Path) -> None:
    params = {"duration_ms": 0, "slots": SLOTS, "window_s": 2.0}
    cells = [cell("throughput", "rq", params, 1, {"jobs_per_s": 100.0, "stability_cv": 0.31,
                                                  "unstable": True}),
             cell("throughput", "arq", params, 1, {"jobs_per_s": 90.0, "stability_cv": 0.02,
                                                   "unstable": False})]
    from reports.sections import Kit
    from scenarios.throughput import THROUGHPUT
    data = load(write_run(tmp_path / "unstable", cells, run_info(len(cells))))
    rows = dict(THROUGHPUT.tables(Kit(data, THROUGHPUT))[0].rows)
    assert rows["rq"][0].text.endswith("(unstable)") and "CV up to 31%" in rows["rq"][0].detail
    assert "(unstable)" not in rows["arq"][0].text and "per-second CV 2%" in rows["arq"][0].detail


@pytest.mark.parametrize("fed_rate, best", [(95.0, "arq"), (120.0, None)])
def test_a_producer_bound_figure_is_a_lower_bound_never_ranked(
        tmp_path: Path, fed_rate: float, best: str | None) -> None:
    """asyncio's queue ran dry inside its window: marked, not starred, and while its
    figure is at or above the best ranked one, no best is called."""
    params = {"duration_ms": 0, "slots": SLOTS, "window_s": 2.0}
    steady = {"stability_cv": 0.02, "unstable": False, "producer_bound": False}
    cells = [cell("throughput", "asyncio", params, 1,
                  {**steady, "jobs_per_s": fed_rate, "producer_bound": True,
                   "window_producer_busy_s": 1.5}),
             cell("throughput", "arq", params, 1, {**steady, "jobs_per_s": 100.0}),
             cell("throughput", "rq", params, 1, {**steady, "jobs_per_s": 50.0})]
    from reports.sections import Kit
    from scenarios.throughput import THROUGHPUT
    data = load(write_run(tmp_path / "fed", cells, run_info(len(cells))))
    rows = dict(THROUGHPUT.tables(Kit(data, THROUGHPUT))[0].rows)
    fed = rows["asyncio"][0]
    assert fed.text.endswith("(producer-bound)") and fed.mark == ""
    assert "lower bound" in fed.detail and "1.5 s" in fed.detail
    starred = [name for name, entries in rows.items() if entries[0].mark.startswith("best")]
    assert starred == ([best] if best else [])


def test_run_time_says_where_the_time_went(tmp_path: Path) -> None:
    """Seconds per backend and scenario from the cells' wall_s; the rest of the run apart."""
    cells = throughput_cells("redis-raw", 1) + crash_cells("redis-raw", 1)
    for index, c in enumerate(cells):
        c["wall_s"] = 2.5 if c["scenario"] == "throughput" else 10.0 + index
    run_dir = write_run(tmp_path / "run", cells, run_info(len(cells)))
    page = (render(run_dir)).read_text()
    section = text_of(page.split("<h3>Run time</h3>")[1].split("<h3>Brokers</h3>")[0])
    throughput = 2.5 * sum(c["scenario"] == "throughput" for c in cells)
    crash = sum(c["wall_s"] for c in cells if c["scenario"] == "crash-recovery")
    assert f"redis-raw {throughput:.1f} {crash:.1f} {throughput + crash:.1f}" in section
    assert f"{throughput + crash:,.0f} s of them in cells" in section
    assert "3,355 s from start to finish" in section  # 03:04:05 -> 04:00:00
    assert "table-run-steps" not in page  # no cell recorded its steps


def test_run_time_shows_the_cells_seconds_by_step(tmp_path: Path) -> None:
    """wall_parts summed per step and scenario, the longest step first."""
    cells = throughput_cells("redis-raw", 1) + crash_cells("redis-raw", 1)
    for c in cells:
        c["wall_s"] = 4.0
        c["wall_parts"] = ({"workers_start": 0.5, "sustained.fill": 1.0,
                            "sustained.window": 2.0, "other": 0.5}
                           if c["scenario"] == "throughput" else
                           {"crash.window": 3.0, "crash.late_watch": 1.0})
    page = render(write_run(tmp_path / "run", cells, run_info(len(cells)))).read_text()
    table = page.split('id="table-run-steps"')[1].split("</table>")[0]
    lines = [text_of(row) for row in table.split("<tr>")[2:]]
    n_tp = sum(c["scenario"] == "throughput" for c in cells)
    n_crash = len(cells) - n_tp
    by_step = {line.split()[0]: line.split()[1:] for line in lines}
    assert by_step["crash.window"] == ["0.0", f"{3.0 * n_crash:.1f}", f"{3.0 * n_crash:.1f}"]
    assert by_step["sustained.window"][0] == f"{2.0 * n_tp:.1f}"
    totals = [float(line.split()[-1]) for line in lines]
    assert totals == sorted(totals, reverse=True)


def test_machine_speed_shows_the_spread_the_machine_caused(tmp_path: Path) -> None:
    """Rounds that differ only by the machine's speed: jobs/s spread 50%, jobs_per_loop 0%;
    a backend whose cells have no speed figure is not in the table."""
    cells = []
    for rnd, (rate, probe_us) in enumerate([(1000.0, 400.0), (1500.0, 800 / 3), (1200.0, 1000 / 3)],
                                           start=1):
        cells += throughput_cells("redis-raw", rnd) + throughput_cells("arq", rnd)
        noop = next(c for c in cells if c["backend"] == "redis-raw" and c["round"] == rnd
                    and c["params"]["duration_ms"] == 0)
        noop["metrics"].update(jobs_per_s=rate, probe_us=probe_us,
                               jobs_per_loop=rate * probe_us / 1e6)
    page = render(write_run(tmp_path / "run", cells, run_info(len(cells)))).read_text()
    section = text_of(page.split("<h3>Machine speed</h3>")[1].split("<h3>Brokers</h3>")[0])
    assert "throughput redis-raw duration_ms=0 jobs=3000 3 267-400 42% 0%" in section
    assert "arq" not in section


def test_no_machine_speed_section_without_the_meter(tmp_path: Path) -> None:
    cells = throughput_cells("redis-raw", 1) + throughput_cells("redis-raw", 2)
    page = render(write_run(tmp_path / "run", cells, run_info(len(cells)))).read_text()
    assert "<h3>Machine speed</h3>" not in page


def test_a_scenario_whose_cells_all_failed_is_not_called_unmeasured(tmp_path: Path) -> None:
    cells = [dict(c, status="failed", reason="WorkerStartError: boom", metrics={})
             for c in all_cells() if c["scenario"] == "throughput" and c["round"] == 1]
    text = text_of(render(write_run(tmp_path / "failed", cells, run_info(len(cells))))
                   .read_text())
    assert "Throughput: no chart, every cell failed or was skipped" in text
    assert "Throughput: not measured in this run" not in text


def test_a_scenario_without_charts_is_not_called_failed(tmp_path: Path) -> None:
    """depth draws no chart: its Charts entry must not say every cell failed when all
    were ok (the committed 1M-job depth run)."""
    import shutil
    source = Path(__file__).resolve().parent.parent / "results/reference/2026-12-01-depth-1m"
    run_dir = tmp_path / "depth"
    run_dir.mkdir()
    for name in ("run.json", "summary.json"):
        shutil.copy(source / name, run_dir / name)
    text = render(run_dir).read_text()
    assert "Depth: no chart for these figures" in text
    assert "Depth: no chart, every cell failed" not in text


def test_a_share_of_an_unstable_ceiling_is_marked(tmp_path: Path) -> None:
    """A library's share of a ceiling whose window was not steady says so, in the cell and
    its detail, as the ceiling's own row does."""
    entry = celery_share_of_flagged_ceiling(tmp_path / "shaky", "unstable")
    assert entry.text == "18% (unstable)"
    assert "redis-raw's figure is unstable" in entry.detail


def test_a_percentile_is_drawn_only_where_the_samples_can_tell_it() -> None:
    """5 idle probes have a p50, not a p90, p99 or p99.9 (each would be their maximum)."""
    from scenarios.latency_views import supported
    ys = [1.0, 2.0, 3.0, 4.0]
    assert supported(ys, 5) == [1.0]
    assert supported(ys, 300) == [1.0, 2.0, 3.0]
    assert supported(ys, 5000) == ys and supported(ys, None) == ys


def test_flagged_figures_get_a_ring_in_the_charts() -> None:
    """An unstable or producer-bound figure is drawn with a ring, the others plainly."""
    from matplotlib.figure import Figure

    from reports.charts import flag_rings
    rows = pd_frame({"unstable_rounds": [0, 1, 0], "producer_bound_rounds": [0, 0, 2]})
    ax = Figure().add_subplot()
    assert flag_rings(ax, rows, [1.0, 2.0, 3.0], [10.0, 20.0, 30.0], "asyncio")
    (ring,) = ax.lines
    assert list(ring.get_xdata()) == [2.0, 3.0]
    plain = pd_frame({"unstable_rounds": [0, 0]})
    assert not flag_rings(Figure().add_subplot(), plain, [1.0, 2.0], [1.0, 2.0], "asyncio")


def pd_frame(columns: dict[str, list[int]]) -> Any:
    import pandas as pd
    return pd.DataFrame(columns)


def test_an_option_left_unset_is_not_shown_as_none() -> None:
    from reports.html import plain
    assert plain(None) == "not set (the scenario grid's, quick or full)"
    assert plain([]) == "none" and plain([0, 10]) == "0, 10"


def test_a_with_checkout_reads_as_its_path_and_commit() -> None:
    from reports.html import plain
    checkouts = {"celery": {"path": "/src/celery", "commit": "abc123"}}
    assert plain(checkouts) == "celery=(path=/src/celery, commit=abc123)"
    assert plain({}) == "none"


def test_a_percentiles_jobs_are_counted_as_it_was_computed() -> None:
    """Merged histograms rest on every round's jobs; a median of per-round percentiles on
    one round's: 3 rounds of 50 jobs have a p90 either way, a p99 only when merged."""
    import pandas as pd

    from scenarios.latency_views import samples_of, supported
    cells = pd.DataFrame({"status": ["ok", "ok", "ok", "failed"],
                          "raw": [{"samples": 50}, {"samples": 50}, {"samples": 60}, {}]})
    assert samples_of(cells, "hdr") == 160 and samples_of(cells, "median") == 50
    assert len(supported([1.0, 2.0, 3.0, 4.0], samples_of(cells, "median"))) == 2
    assert samples_of(cells.assign(raw=[{}, {}, {}, {}]), "hdr") is None


def test_a_reused_cell_is_said_to_be_the_same_measurement(tmp_path: Path) -> None:
    """payload's smallest size at the throughput grid's settings is the throughput noop
    cell (`reused_from`): the payload table must say so, not show it as a second figure."""
    cells = [c for c in all_cells() if c["scenario"] in ("throughput", "payload")
             and c["round"] == 1 and c["backend"] in ("asyncio", "redis-raw")]
    for c in cells:
        if c["scenario"] == "payload" and c["params"]["payload_bytes"] == PAYLOAD_BYTES[0]:
            source = next(t for t in cells if t["scenario"] == "throughput"
                          and t["backend"] == c["backend"] and t["params"]["duration_ms"] == 0)
            source["cell_dir"] = f"cells/throughput-{c['backend']}-noop"
            c["reused_from"], c["metrics"] = source["cell_dir"], source["metrics"]
    text = text_of(render(write_run(tmp_path / "run", cells, run_info(len(cells))))
                   .read_text())
    assert (f"Reused, not measured again: payload_bytes={PAYLOAD_BYTES[0]} is the throughput "
            "cell duration_ms=0") in text
    assert text.count("Reused, not measured again") == 1


def test_the_one_backend_that_kept_up_is_the_best_of_its_latency_column() -> None:
    """A saturated backend could not keep up with the rate: a measured one beside it wins,
    as it would beside a slower measured one; alone, nothing is ranked."""
    from reports.verdict import Entry, mark
    kept_up, lost = Entry("3 ms", median=3.0, n=1), Entry("saturated", status="saturated")
    mark([kept_up, lost], higher_is_better=False)
    assert kept_up.mark == "best" and lost.mark == ""
    alone = Entry("3 ms", median=3.0, n=1)
    mark([alone, Entry("failed: boom", status="failed")], higher_is_better=False)
    assert alone.mark == ""
    bound = Entry("9,000 jobs/s", median=9000.0, n=1, lower_bound=True)
    mark([bound, Entry("saturated", status="saturated")], higher_is_better=False)
    assert bound.mark == ""  # a lower bound is never ranked


def test_a_claim_on_an_unstable_figure_says_so(tmp_path: Path) -> None:
    """A jobs/s claim judged on a window that was not steady keeps its verdict and says
    the figure was unstable, as the tables do."""
    params = {"duration_ms": 100, "slots": SLOTS, "window_s": 2.0}
    cells = [cell("throughput", "asyncio", params, 1, {"jobs_per_s": 79.0, "unstable": True}),
             cell("throughput", "arq", params, 1, {"jobs_per_s": 16.0})]
    results = {r.id: r for r in evaluate_all(load(write_run(tmp_path / "run", cells,
                                                             run_info(len(cells)))))}
    findings = {f.subject: f.figure for f in results["ten-thousand-per-second"].findings}
    assert "(unstable in 1 of 1 rounds: a short window or a per-second CV above 10%)" \
        in findings["asyncio"]
    assert "unstable" not in findings["arq"]


def test_a_library_above_its_ceiling_in_a_payload_round_is_named(tmp_path: Path) -> None:
    """At 1 MiB the ceiling's window may be fed by the driver: a library that drained
    faster than it in a round is named in the payload table, as in the throughput one."""
    cells = []
    for rnd, (lib, raw) in enumerate(((150.0, 94.0), (90.0, 120.0)), start=1):
        for backend, rate in (("arq", lib), ("redis-raw", raw)):
            one = cell("payload", backend, {"payload_bytes": 1048576, "slots": SLOTS}, rnd,
                       {"jobs_per_s": rate})
            one["cell_dir"] += f"-{rnd}"
            cells.append(one)
    text = text_of(render(write_run(tmp_path / "run", cells, run_info(len(cells))))
                   .read_text())
    assert "ABOVE redis-raw (round 1)" in text
    assert "ABOVE redis-raw (rounds" not in text and "ABOVE arq" not in text


def test_a_latency_saturated_in_one_round_says_so_and_is_not_ranked(tmp_path: Path) -> None:
    """Round 1 could not keep up at 200/s (no latency), round 2 could: the figure is round
    2's, the table says in how many rounds it saturated, it takes no star, and the
    percentiles chart draws round 2's histogram with a note, not a 'not plotted' one."""
    params = {"rate": 200.0, "rate_label": "200/s", "duration_s": 2.0}
    cells = [cell("latency", "celery-redis", params, 1, {
                 "achieved_per_s": 150.0, "saturated": True, "backlog": 48,
                 "latency_ms": None, "completed": 300}),
             cell("latency", "celery-redis", params, 2, {
                 **latency_metrics(20.0, 0.1, 300), "achieved_per_s": 200.0,
                 "saturated": False, "backlog": 0, "completed": 400})]
    for rnd in (1, 2):
        cells.append(cell("latency", "arq", params, rnd, {
            **latency_metrics(90.0, 0.1, 300), "achieved_per_s": 200.0, "saturated": False,
            "backlog": 0, "completed": 400}))
    for i, one in enumerate(cells):
        one["cell_dir"] += f"-{i}"
    data = load(write_run(tmp_path / "run", cells, run_info(len(cells))))
    from reports.sections import Kit
    from scenarios.latency import LATENCY
    kit = Kit(data, LATENCY)
    (table,) = LATENCY.tables(kit)
    entries = dict(table.rows)
    (celery,) = entries["celery-redis"]
    assert "(saturated in 1 of 2 rounds)" in celery.text and "not ranked" in celery.detail
    assert celery.mark == ""
    charts = {c.slug: c for c in LATENCY.charts(kit) if c is not None}
    notes = " ".join(charts["latency_percentiles"].notes)
    assert "celery-redis (200/s) \u2014 saturated in 1 of 2 rounds; plotted from the others" \
        in notes
    assert "not plotted" not in notes
    assert "merged HdrHistograms" in charts["latency_percentiles"].caption
    assert "medians of per-round" not in charts["latency_percentiles"].caption


def test_a_worker_kill_that_hit_no_running_job_earns_no_tick(tmp_path: Path) -> None:
    """0 lost after a kill that hit no running job shows nothing about re-delivery: no
    tick in the table, and the re-queue claim cannot decide on it."""
    params = {"fault": "job-process-kill", "mode": "default", "persistence": None, "jobs": 24}
    cells = []
    for backend, untested in (("rq", True), ("celery-redis", False)):
        one = cell("crash-recovery", backend, params, 1, {
            "completed": 24, "lost": 0, "duplicated": 0, "in_flight_on_killed": 0 if untested
            else 4, "untested": untested, "recovery_s": {"first": 0.4, "last": 1.9}})
        one["cell_dir"] += f"-{backend}"
        cells.append(one)
    data = load(write_run(tmp_path / "run", cells, run_info(len(cells))))
    from reports.sections import Kit
    from scenarios.crash import CRASH_RECOVERY
    tables = CRASH_RECOVERY.tables(Kit(data, CRASH_RECOVERY))
    entries = {name: row[0] for name, row in tables[0].rows}
    assert entries["rq"].mark == "" and "kill hit no running job in 1 of 1 rounds" \
        in entries["rq"].text
    assert entries["celery-redis"].mark == "good"
    results = {r.id: r for r in evaluate_all(data)}
    findings = {f.subject: f for f in results["requeue-on-worker-death"].findings}
    verdicts = {subject.split(" / ")[0]: f.verdict for subject, f in findings.items()}
    assert verdicts["rq"] == "not measured in this run"
    assert verdicts["celery-redis"] == "holds"


def test_each_profile_is_held_against_its_own_ceiling(tmp_path: Path) -> None:
    """arq[reliable] at 40/s is below redis-raw[reliable] at 60/s: not above its ceiling
    because arq[default] outran redis-raw[default]; its share is of the reliable ceiling."""
    from reports.verdict import library_cost
    cells = []
    for profile, lib, raw in (("default", 150.0, 94.0), ("reliable", 40.0, 60.0)):
        for scenario, params in (("payload", {"payload_bytes": 1048576, "slots": SLOTS}),
                                 ("throughput", {"duration_ms": 0, "slots": SLOTS})):
            for backend, rate in (("arq", lib), ("redis-raw", raw)):
                one = cell(scenario, backend, params, 1, {"jobs_per_s": rate},
                           profile=profile)
                one["cell_dir"] += f"-{profile}"
                cells.append(one)
    run_dir = write_run(tmp_path / "run", cells, run_info(len(cells)))
    text = text_of(render(run_dir).read_text())
    assert text.count("ABOVE redis-raw (round 1)") == 1
    shares = {name: row[0].text for name, row in
              library_cost(load(run_dir), {"arq": "redis-raw"}).rows}
    assert shares["arq [reliable] vs redis-raw"].startswith("67%")  # 40 / 60, not 40 / 94
    assert "ABOVE CEILING" in shares["arq [default] vs redis-raw"]
    assert "ABOVE" not in shares["arq [reliable] vs redis-raw"]


def test_a_sleeping_jobs_rate_says_how_far_it_is_from_the_ideal(tmp_path: Path) -> None:
    """100 ms jobs on 8 slots allow 80/s: RQ's 27/s reads as 34% of it, in the detail."""
    params = {"duration_ms": 100, "slots": SLOTS, "window_s": 2.0}
    cells = [cell("throughput", "rq", params, 1, {"jobs_per_s": 27.0, "ideal_jobs_per_s": 80.0}),
             cell("throughput", "arq", params, 1, {"jobs_per_s": 79.0,
                                                   "ideal_jobs_per_s": 80.0})]
    for i, one in enumerate(cells):
        one["cell_dir"] += f"-{i}"
    from reports.sections import Kit
    from scenarios.throughput import THROUGHPUT
    data = load(write_run(tmp_path / "run", cells, run_info(len(cells))))
    (table, *_) = THROUGHPUT.tables(Kit(data, THROUGHPUT))
    entries = {name: row[0] for name, row in table.rows}
    assert "34% of the ideal 80/s (slots / duration)" in entries["rq"].detail



def test_a_percentile_from_too_few_jobs_is_shown_but_not_ranked() -> None:
    """A p99 of 60 jobs is their largest one: the table says how many and ranks no best."""
    import pandas as pd

    from reports.verdict import Column, entry_of, mark

    def rows(median: float, samples: int) -> pd.DataFrame:
        return pd.DataFrame([{"status": "ok", "reason": None, "rounds": 1, "rounds_ok": 1,
                              "latency_ms.p99": median, "latency_ms.p99:n": 1,
                              "samples": samples}])

    column = Column("p99", lambda frame: frame, "latency_ms.p99", higher_is_better=False,
                    fmt=lambda v: f"{v:.1f} ms")
    few, many = entry_of(rows(10.4, 60), column), entry_of(rows(38.2, 60), column)
    assert "(from 60 jobs)" in few.text and few.partial
    mark([few, many], higher_is_better=False)
    assert few.mark == many.mark == ""
    enough = entry_of(rows(10.4, 200), column)
    assert "jobs)" not in enough.text and not enough.partial
