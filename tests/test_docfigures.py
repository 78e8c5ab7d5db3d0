"""Figures in docs/ are generated from committed results and kept in step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.docfigures import FiguresError, regenerate, update_docs


def render_block(name: str, source: Path) -> str:
    """A doc holding one `name` block from `source`, rendered."""
    return regenerate(f"<!-- figures: {name} from {source} -->\n"
                      f"<!-- end of figures: {name} -->", "doc.md")


def test_every_generated_block_in_docs_matches_its_committed_results() -> None:
    assert update_docs(check=True) == [], "run: .venv/bin/python -m harness docs-figures"


def write_summary(folder: Path, cells: list[dict]) -> Path:
    folder.mkdir()
    (folder / "summary.json").write_text(json.dumps({"cells": cells}))
    return folder


def test_a_block_is_rendered_from_its_source_and_nothing_else_changes(tmp_path: Path) -> None:
    cells = [{"scenario": "throughput", "backend": "rq", "status": "ok", "round": r,
              "params": {"duration_ms": 0}, "metrics": {"jobs_per_s": rate, "stability_cv": cv}}
             for r, rate, cv in ((1, 100.0, 0.02), (2, 120.0, 0.05), (3, 110.0, 0.01))]
    source = write_summary(tmp_path / "run", cells)
    doc = (f"intro\n<!-- figures: throughput from {source} -->\nstale\n"
           "<!-- end of figures: throughput -->\noutro\n")
    fresh = regenerate(doc, "doc.md")
    assert fresh.startswith("intro\n<!-- figures: throughput from ") and fresh.endswith("outro\n")
    assert "| rq | 110 (100-120, 5%) |" in fresh and "stale" not in fresh
    assert regenerate(fresh, "doc.md") == fresh


def test_an_unknown_block_or_a_missing_source_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FiguresError, match="unknown figures block 'nope'"):
        regenerate(f"<!-- figures: nope from {tmp_path} -->\n<!-- end of figures: nope -->",
                   "doc.md")
    with pytest.raises(FiguresError, match="no results folder"):
        regenerate(f"<!-- figures: throughput from {tmp_path}/absent -->\n"
                   "<!-- end of figures: throughput -->", "doc.md")


def test_the_run_time_block_sums_each_cells_wall_time_and_the_time_outside(
        tmp_path: Path) -> None:
    cells = [{"scenario": s, "backend": b, "wall_s": w, "status": "ok", "round": 1,
              "profile": "default", "params": {"n": n}, "metrics": {}}
             for n, (s, b, w) in enumerate((("throughput", "rq", 10.0),
                                            ("throughput", "rq", 5.5), ("memory", "rq", 2.0),
                                            ("throughput", "asyncio", 3.0)))]
    run = {"started": "2026-12-02T10:00:00Z", "finished": "2026-12-02T10:01:05Z",
           "config": {"quick": True, "scenarios": ["throughput", "memory"]},
           "git_revision": "abcdef123"}
    source = tmp_path / "run"
    source.mkdir()
    (source / "summary.json").write_text(json.dumps({"schema": 1, "run": run, "cells": cells}))
    body = render_block("run-time", source)
    assert "| asyncio | 3 | 0 | 3 |" in body and "| rq | 16 | 2 | 18 |" in body
    assert "| all | 18 | 2 | 20 |" in body
    assert "1 min 5 s, of which 44 s outside cells" in body
    assert "`run --quick --scenario throughput,memory` at abcdef1" in body


def test_the_window_feed_block_lists_the_fed_cells_and_counts_them(tmp_path: Path) -> None:
    def steady(backend: str, params: dict, sent: int, dry: bool, **extra: object) -> dict:
        return {"scenario": "payload", "backend": backend, "status": "ok", "round": 1,
                "params": params, **extra,
                "metrics": {"jobs_per_s": 2000.0, "window_s": 8.0, "window_sent": sent,
                            "window_producer_busy_s": 1.56 if sent else 0.0,
                            "producer_bound": dry}}
    cells = [steady("asyncio", {"payload_bytes": 1024 ** 2}, 16000, True),
             steady("asyncio", {"payload_bytes": 16 * 1024}, 10, False),
             steady("rq", {"payload_bytes": 1024}, 0, False),
             steady("rq", {"payload_bytes": 64}, 0, False, reused_from="cells/0001"),
             {**steady("arq", {"rate_label": "max", "rate": None}, 0, True),
              "scenario": "latency"}]
    source = write_summary(tmp_path / "run", cells)
    body = render_block("window-feed", source)
    assert "| asyncio | payload | 1 MiB payload | 1 | 2,000 | 16,000 | 1.6 of 8 s | yes |" in body
    assert "| arq | latency | rate max | 1 | 2,000 | 0 | 0 of 8 s | yes |" in body
    assert "| rq |" not in body
    assert body.index("| 16 KiB payload |") < body.index("| 1 MiB payload |")
    assert "3 of the run's 4 steady-state cells were fed inside their window; 2 of them" in body


def test_the_run_steps_block_sums_each_step_per_scenario(tmp_path: Path) -> None:
    cells = [{"scenario": "throughput", "backend": "rq", "wall_s": 5.0,
              "wall_parts": {"sustained.fill": 3.0, "sustained.window": 2.0}},
             {"scenario": "throughput", "backend": "asyncio", "wall_s": 2.5,
              "wall_parts": {"sustained.window": 2.0, "other": 0.5}},
             {"scenario": "memory", "backend": "rq", "wall_s": 1.0,
              "wall_parts": {"fill.enqueue": 1.0}}]
    source = write_summary(tmp_path / "run", cells)
    body = render_block("run-steps", source)
    rows = [line for line in body.splitlines() if line.startswith("| `")]
    assert rows == ["| `sustained.window` | 4 | 0 | 4 |", "| `sustained.fill` | 3 | 0 | 3 |",
                    "| `fill.enqueue` | 0 | 1 | 1 |", "| `other` | 0 | 0 | 0 |"]
    cells[1]["wall_parts"]["prepare"] = 0.2  # too short to list: summed in the note
    body = regenerate(f"<!-- figures: run-steps from {write_summary(tmp_path / 'two', cells)} "
                      "-->\n<!-- end of figures: run-steps -->", "doc.md")
    assert "`prepare`" not in body and "1 steps of under 0.5 s in all left out (0.2 s)" in body
    write_summary(tmp_path / "old", [{"scenario": "memory", "backend": "rq", "wall_s": 1.0}])
    with pytest.raises(FiguresError, match="recorded its steps"):
        regenerate(f"<!-- figures: run-steps from {tmp_path / 'old'} -->\n"
                   "<!-- end of figures: run-steps -->", "doc.md")


def test_the_latency_saturation_block_sets_both_tests_side_by_side(tmp_path: Path) -> None:
    def rated(backend: str, rate: float, achieved: float, growth: float, saturated: bool,
              limited: bool = False, offered: float | None = None) -> dict:
        return {"scenario": "latency", "backend": backend, "status": "ok", "round": 1,
                "params": {"rate": rate, "rate_label": f"{rate:g}/s"},
                "metrics": {"achieved_per_s": achieved, "wait_growth": growth, "backlog": 3,
                            "saturated": saturated, "producer_limited": limited,
                            "offered_per_s": offered or rate}}
    cells = [rated("arq", 200.0, 175.0, 0.031, False),
             rated("amqp-raw", 5000.0, 4600.0, 0.238, True),
             rated("rq", 200.0, 45.0, 1.7, True, limited=True, offered=130.0),
             {"scenario": "latency", "backend": "arq", "status": "ok", "round": 1,
              "params": {"rate": None, "rate_label": "idle"}, "metrics": {}}]
    source = write_summary(tmp_path / "run", cells)
    body = render_block("latency-saturation", source)
    assert "| arq | 200/s | 1 | 200 | 0.88 | 0.031 | 3 | keeps up |" in body
    assert "| amqp-raw | 5000/s | 1 | 5,000 | 0.92 | 0.238 | 3 | saturated |" in body
    assert "| rq | 200/s | 1 | 130 | 0.35 | 1.700 | 3 | producer-limited, saturated |" in body
    assert "idle" not in body
    assert ("3 rate cells; in 2 the test on jobs ended per second (below 0.9 of the offered "
            "rate, or the backlog) gives the other verdict: amqp-raw 5000/s (keeps up by that "
            "test); arq 200/s (saturated by that test).") in body


def test_the_throughput_block_gives_another_profile_a_row_of_its_own(tmp_path: Path) -> None:
    def cell(profile: str, rate: float, round_no: int) -> dict:
        return {"scenario": "throughput", "backend": "rq", "profile": profile, "status": "ok",
                "round": round_no, "params": {"duration_ms": 0.0},
                "metrics": {"jobs_per_s": rate, "stability_cv": 0.05}}
    source = write_summary(tmp_path / "run", [cell("tuned", 210.0, 1), cell("default", 66.0, 1),
                                              cell("default", 70.0, 2), cell("tuned", 200.0, 2)])
    body = render_block("throughput", source)
    assert "| rq | 68 (66-70, 5%) |" in body and "| rq (tuned) | 205 (200-210, 5%) |" in body
    assert body.index("| rq |") < body.index("| rq (tuned) |")


def test_the_window_start_block_sets_the_first_second_against_the_window(tmp_path: Path
                                                                         ) -> None:
    def noop(backend: str, round_no: int, rate: float, seconds: list[int],
             ramp: float | None) -> dict:
        metrics = {"jobs_per_s": rate, "per_second": seconds, "stability_cv": 0.05}
        if ramp is not None:
            metrics["ramp_s"] = ramp
        return {"scenario": "throughput", "backend": backend, "status": "ok",
                "round": round_no, "params": {"duration_ms": 0}, "metrics": metrics}
    cells = [noop("rq", 2, 110.0, [100, 100, 100], 0.7), noop("rq", 1, 100.0, [50, 100, 100], 0.3),
             noop("asyncio", 1, 1000.0, [1000, 1000], None),
             noop("asyncio", 2, 1050.0, [1000, 1000], None),
             {**noop("arq", 1, 5.0, [5], None), "params": {"duration_ms": 10}}]
    source = write_summary(tmp_path / "run", cells)
    body = render_block("window-start", source)
    assert "| rq | 100 / 110 | 50% / 100% | 5% / 5% | 0.3 / 0.7 | 10% |" in body
    assert "| asyncio | 1,000 / 1,050 | 100% / 100% | 5% / 5% | - (0.2 fixed) | 5% |" in body
    assert "arq" not in body
    assert "The noop rounds of 2 of the 2 backends spread by at most 10%" in body


def test_the_ceiling_drains_block_lists_every_drain_in_the_order_it_ran(tmp_path: Path
                                                                        ) -> None:
    row = {"backend": "amqp-raw", "status": "ok", "cpu_ratio": 0.93,
           "ceiling_bare_mode_per_s": [30_000.0, 45_000.0],
           "bare_loop_per_s": [50_000.0, 33_000.0], "bare_exec_loop_per_s": [48_000.0, 31_000.0],
           "cpu_us_per_job": {"ceiling": [21.0, 20.5], "bare": [19.5, 19.0],
                              "bare_exec": [19.8, 20.1]}}
    old = {"backend": "pg-raw", "status": "ok"}  # a self-test from before CPU was read
    (tmp_path / "st").mkdir()
    (tmp_path / "st" / "selftest.json").write_text(json.dumps(
        {"ceilings": {"amqp": row, "postgres": old}}))
    lines = [line for line in render_block("ceiling-drains", tmp_path / "st").splitlines()
             if line.startswith("| amqp-raw") or line.startswith("| pg-raw")]
    assert lines == ["| amqp-raw | 1 | ceiling (bare mode) | 30,000 | 21.0 |",
                     "| amqp-raw | 1 | forked loop | 50,000 | 19.5 |",
                     "| amqp-raw | 1 | exec'd loop | 48,000 | 19.8 |",
                     "| amqp-raw | 2 | exec'd loop | 31,000 | 20.1 |",
                     "| amqp-raw | 2 | forked loop | 33,000 | 19.0 |",
                     "| amqp-raw | 2 | ceiling (bare mode) | 45,000 | 20.5 |"]
