"""history add / render on real summary.json files (no brokers); the page in Chromium."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.cli import main
from tests.test_compare import NOISE_B, make_run, write
from tests.test_report import CHROMIUM, chromium, console_errors, probe, probed_copy

COMMITS = ("a1", "b2", "c3", "d4", "e5")


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """Five runs, one a commit; asyncio gets 30% slower at the fourth."""
    store = tmp_path / "history"
    for index, commit in enumerate(COMMITS):
        factors = {"asyncio": 0.7} if index >= 3 else {}
        run = make_run(tmp_path / f"run-{commit}", factors,
                       noise=NOISE_B if index % 2 else (1.0, 1.012, 0.991),
                       info={"git_revision": commit * 10,
                             "started": f"2025-01-0{index + 1}T00:00:00Z"})
        assert main(["history", "add", str(run), "--dir", str(store)]) == 0
    return store


def test_add_keeps_one_small_entry_per_run(history: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(history.glob("*.json"))
    assert len(files) == 5 and all(f.stat().st_size < 20_000 for f in files)
    entry = json.loads(files[0].read_text())
    assert entry["commit"] == "a1" * 10 and entry["date"] == "2025-01-01T00:00:00Z"
    assert entry["fingerprint"]["slots"] == 8
    metrics = {k for c in entry["cells"] for k in c["metrics"]}
    assert metrics == {"jobs_per_s", "unstable", "window_s"}
    assert {c["round"] for c in entry["cells"]} == {1, 2, 3}
    # the same run added again is the same file; an entry is a summary compare reads
    assert main(["history", "add", str(tmp_path / "run-a1a1"), "--dir", str(history)]) == 2
    capsys.readouterr()
    assert main(["history", "add", str(tmp_path / "run-a1"), "--dir", str(history)]) == 0
    assert capsys.readouterr().out.startswith("replaced ")
    assert len(list(history.glob("*.json"))) == 5
    assert main(["compare", str(files[0]), str(files[1])]) == 0


def test_add_refuses_an_injected_delay(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    slowed = make_run(tmp_path / "slowed", config={"inject_delay_us": 300})
    assert main(["history", "add", str(slowed), "--dir", str(tmp_path / "h")]) == 2
    assert "inject-delay-us" in capsys.readouterr().err


def test_render_writes_page_and_pngs(history: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "site"
    assert main(["history", "render", "--dir", str(history), "--out", str(out)]) == 0
    assert "(5 runs)" in capsys.readouterr().out
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["asyncio.png", "celery-redis.png", "redis-raw.png"]
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "index.html").read_text()
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", page)
    assert page.count('<img src="data:image/png;base64,') == 3
    changes = page.split('<section id="changes">')[1].split("</section>")[0]
    # only asyncio's drop at the fourth commit is called, on both durations
    assert changes.count("<td>slower</td>") == 2 and changes.count("<td>asyncio</td>") == 2
    assert "#2 <code>c3c3c3c3c3</code> &rarr; #3 <code>d4d4d4d4d4" in changes
    assert "faster" not in changes
    runs = page.split('<section id="runs">')[1].split("</section>")[0]
    assert runs.count("<tr><td>") == 5  # a row per entry, oldest first
    assert runs.index("a1a1a1a1a1") < runs.index("e5e5e5e5e5")


def test_render_without_entries_is_one_line(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    for directory in ("empty", "nothing"):
        assert main(["history", "render", "--dir", str(tmp_path / directory), "--out",
                     str(tmp_path / "o")]) == 2
        assert len(capsys.readouterr().err.splitlines()) == 1
    write(tmp_path / "empty" / "x.json", '{"schema": 1, "cells": []}')
    assert main(["history", "render", "--dir", str(tmp_path / "empty"), "--out",
                 str(tmp_path / "o")]) == 2


@pytest.mark.parametrize(("field", "value"), [("date", None), ("date", 12345),
                                             ("commit", None), ("fingerprint", None),
                                             ("run", None)])
def test_a_broken_entry_is_one_line(history: Path, tmp_path: Path, field: str, value: object,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    entry_file = sorted(history.glob("*.json"))[2]
    entry = json.loads(entry_file.read_text())
    if value is None:
        del entry[field]
    else:
        entry[field] = value
    entry_file.write_text(json.dumps(entry))
    assert main(["history", "render", "--dir", str(history), "--out",
                 str(tmp_path / "site")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and f"not a valid history entry ({field!r}" in err


def test_render_and_add_onto_a_file_are_one_line(history: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    assert main(["history", "render", "--dir", str(history), "--out", str(a_file)]) == 2
    assert main(["history", "add", str(tmp_path / "run-a1"), "--dir", str(a_file)]) == 2
    assert main(["baseline", "save", "x", str(tmp_path / "run-a1"), "--baselines-dir",
                 str(a_file)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3 and all(f"{a_file} is not a directory" in line for line in lines)


def test_two_undated_runs_are_two_entries(tmp_path: Path) -> None:
    for name, factors in (("one", {}), ("two", {"asyncio": 0.5})):
        run = make_run(tmp_path / name, factors)
        summary = json.loads((run / "summary.json").read_text())
        summary.pop("run")
        (run / "summary.json").write_text(json.dumps(summary))
        assert main(["history", "add", str(run), "--dir", str(tmp_path / "h")]) == 0
    assert len(list((tmp_path / "h").glob("undated*.json"))) == 2


def test_baseline_list_shows_the_good_beside_a_bad_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "baselines"
    run = make_run(tmp_path / "run")
    assert main(["baseline", "save", "good", str(run), "--baselines-dir", str(store)]) == 0
    (store / "broken.json").write_text("{")
    capsys.readouterr()
    assert main(["baseline", "list", "--baselines-dir", str(store)]) == 0
    out = capsys.readouterr().out
    assert "broken" in out and "unreadable" in out and "good" in out and "ok cells" in out


@pytest.mark.slow
def test_history_page_in_chromium(history: Path, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is not installed (python -m harness setup --test-tools)")
    out = tmp_path / "site"
    assert main(["history", "render", "--dir", str(history), "--out", str(out)]) == 0
    dom, found, stderr = probe(probed_copy(out / "index.html", tmp_path, "page.html"),
                               tmp_path, "dom")
    for section in ("runs", "changes", "charts"):
        assert f'<section id="{section}">' in dom, section
    assert len(found["images"]) == 3
    assert all(w.startswith("ok:") and int(w[3:]) > 300 for w in found["images"]), found
    assert found["errors"] == [], found
    assert not console_errors(stderr), console_errors(stderr)
    shot = tmp_path / "shot.png"
    done = chromium([f"--screenshot={shot}", "--window-size=1200,3000",
                     (out / "index.html").as_uri()], tmp_path, "shot")
    assert shot.exists() and shot.stat().st_size > 50_000, done.stderr[-2000:]
    assert not console_errors(done.stderr), console_errors(done.stderr)


def test_an_entry_keeps_what_the_per_loop_basis_needs(tmp_path: Path) -> None:
    """A run with the speed meter: its entry keeps jobs_per_loop and the probe settings,
    so compare (and --noise) judge entries per probe loop as they would the runs."""
    from tests.test_compare import SPEED

    run_dir = make_run(tmp_path / "metered", probe_us=SPEED)
    assert main(["history", "add", str(run_dir), "--dir", str(tmp_path / "h")]) == 0
    (entry,) = (tmp_path / "h").glob("*.json")
    data = json.loads(entry.read_text())
    assert data["run"]["speed_probe"]["loop_iterations"] == 10_000
    noop = [c for c in data["cells"] if c["params"]["duration_ms"] == 0]
    assert noop and all("jobs_per_loop" in c["metrics"] for c in noop)


def test_latest_points_at_the_newest_run_but_never_replaces_a_users_file(tmp_path: Path
                                                                         ) -> None:
    from core.results import point_latest

    (tmp_path / "run1").mkdir()
    (tmp_path / "run2").mkdir()
    point_latest(tmp_path / "run1")
    point_latest(tmp_path / "run2")
    assert (tmp_path / "latest").resolve() == (tmp_path / "run2").resolve()
    notes = tmp_path / "other"
    notes.mkdir()
    (notes / "latest").write_text("my notes")
    (notes / "run").mkdir()
    point_latest(notes / "run")
    assert (notes / "latest").read_text() == "my notes"


def test_add_says_when_the_run_did_not_finish(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    cut = make_run(tmp_path / "cut", info={"complete": False})
    assert main(["history", "add", str(cut), "--dir", str(tmp_path / "h")]) == 0
    assert "did not finish normally" in capsys.readouterr().err


def test_a_pair_of_runs_that_cannot_be_compared_offers_no_force() -> None:
    """`history render` has no --force: its note about two incomparable runs names the
    difference and no option the reader cannot use."""
    from harness.history.changes import called_changes
    entry = {"fingerprint": {"slots": 8, "profiles": ["default"], "quick": True,
                             "window_s": None}, "cells": []}
    older = {**entry, "commit": "a" * 40}
    newer = {**entry, "commit": "b" * 40, "fingerprint": {**entry["fingerprint"], "slots": 4}}
    called, notes = called_changes([older, newer])
    assert called == [] and len(notes) == 1
    assert "slots 8 vs 4" in notes[0] and "--force" not in notes[0]


def test_a_run_elsewhere_leaves_its_folder_without_a_latest_link(tmp_path: Path) -> None:
    """`--out ~/bench1` must not create ~/latest: only a run in results/ moves the link."""
    from core.results import RunWriter
    RunWriter(tmp_path / "bench1", {"id": "bench1"})
    assert not (tmp_path / "latest").exists()
    RunWriter(tmp_path / "bench2", {"id": "bench2"}, latest=True)
    assert (tmp_path / "latest").resolve() == (tmp_path / "bench2").resolve()


def test_an_entry_keeps_which_cells_are_reused_so_compare_judges_them_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A latency max cell that reuses the throughput noop cell is one measurement: compare
    of two entries judges it once, as compare of the two runs does."""
    runs = []
    for day, name in enumerate(("base", "head"), start=1):
        run_dir = make_run(tmp_path / name, info={"started": f"2025-01-0{day}T00:00:00Z"})
        summary = json.loads((run_dir / "summary.json").read_text())
        noop = [c for c in summary["cells"] if c["params"]["duration_ms"] == 0]
        for index, cell in enumerate(noop):
            cell["cell_dir"] = f"cells/{index:04d}-throughput"
            summary["cells"].append({**cell, "scenario": "latency",
                                     "params": {"rate": None, "rate_label": "max"},
                                     "cell_dir": f"cells/{index + 500:04d}-latency",
                                     "reused_from": cell["cell_dir"]})
        (run_dir / "summary.json").write_text(json.dumps(summary))
        assert main(["history", "add", str(run_dir), "--dir", str(tmp_path / "h")]) == 0
        runs.append(run_dir)
    capsys.readouterr()
    entries = sorted((tmp_path / "h").glob("*.json"))
    outputs = []
    for pair in (runs, entries):
        main(["compare", str(pair[0]), str(pair[1])])
        outputs.append(capsys.readouterr().out)
    judged = [re.search(r"gated rows: (\d+) judged", out) for out in outputs]
    assert all(judged) and judged[0][1] == judged[1][1], outputs
    assert "judged there" in outputs[1]


def test_the_charts_mark_a_run_whose_cells_failed_and_skip_bad_params() -> None:
    """A backend whose cells all failed in a run gets a mark there, not a silent gap; a
    cell with no numeric duration is left out, not a crash."""
    from harness.history.render import collect

    def cell(duration: object, status: str, value: float | None = 100.0) -> dict:
        return {"scenario": "throughput", "backend": "rq", "profile": "default",
                "params": {"duration_ms": duration}, "status": status,
                "metrics": {"jobs_per_s": value}}

    entries = [{"cells": [cell(0, "ok"), cell(0, "ok", 110.0), cell(None, "ok")]},
               {"cells": [cell(0, "failed", None), cell(10, "failed", None)]}]
    series = collect(entries)["rq"]
    assert series.points == {0.0: {0: [100.0, 110.0]}}
    assert series.failed == {0.0: {1}, 10.0: {1}}


def test_a_run_whose_config_is_not_an_object_is_read_not_a_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = make_run(tmp_path / "run")
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["run"]["config"] = None
    (run_dir / "summary.json").write_text(json.dumps(summary))
    assert main(["history", "add", str(run_dir), "--dir", str(tmp_path / "h")]) == 0
    assert main(["baseline", "save", "x", str(run_dir), "--baselines-dir",
                 str(tmp_path / "bl")]) == 0
    assert "Traceback" not in capsys.readouterr().err
