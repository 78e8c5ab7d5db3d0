"""The settings profiles: the --profile lists, every backend's tuned line against what its
adapter changes, and the tuned figures beside the default ones in the report."""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

import pytest

from adapters import BACKENDS, ROOT
from adapters.base import PROFILES
from harness.cli import profile_list, with_reference
from reports.data import load
from reports.profiles import pairs, summary_lines
from tests.test_report import cell, run_info, write_run

SAME = "same as default: "


@pytest.mark.parametrize(("text", "profiles"), [
    ("default", ("default",)),
    ("both", ("default", "reliable")),
    ("all", PROFILES),
    ("default,tuned", ("default", "tuned")),
    ("tuned,both", ("tuned", "default", "reliable")),
])
def test_profile_lists(text: str, profiles: tuple[str, ...]) -> None:
    assert profile_list(text) == profiles


@pytest.mark.parametrize(("given", "run"), [
    (("tuned",), ("tuned", "default")),
    (("reliable", "tuned"), ("reliable", "tuned", "default")),
    (("tuned", "default"), ("tuned", "default")),
    (("reliable",), ("reliable",)),
])
def test_tuned_runs_with_default_as_its_reference(given, run) -> None:
    assert with_reference(given) == run


def test_an_unknown_profile_names_the_valid_ones() -> None:
    with pytest.raises(argparse.ArgumentTypeError,
                       match="valid: default, reliable, tuned, both, all"):
        profile_list("default,fast")


def defines_tunings(adapter_file: Path) -> bool:
    """Whether an adapter module overrides Adapter.tunings (read, not imported: the
    adapters import their libraries, which live in .venvs)."""
    tree = ast.parse(adapter_file.read_text())
    return any(isinstance(node, ast.FunctionDef) and node.name == "tunings"
               for node in ast.walk(tree))


@pytest.mark.parametrize("name", list(BACKENDS))
def test_tuned_changes_only_what_backend_toml_says(name: str) -> None:
    info = BACKENDS[name]
    line = info.profiles["tuned"]
    module = info.adapter.split(":")[0]
    changes = defines_tunings(ROOT.parent / Path(*module.split(".")).with_suffix(".py"))
    if line.startswith(SAME):
        assert not changes, f"{name}: backend.toml says tuned = default, the adapter tunes"
        assert len(line) > len(SAME) + 10, f"{name}: say why tuned = default"
    else:
        assert changes, f"{name}: backend.toml names tuned settings the adapter never sets"
        assert "docs" in line and "https://" in line, f"{name}: cite the doc for each change"


def test_tuned_figures_beside_default_ones(tmp_path: Path) -> None:
    params = {"duration_ms": 10, "slots": 8, "jobs": 100}
    tuned = cell("throughput", "arq", params, 1, {"jobs_per_s": 220.0}, profile="tuned")
    tuned["settings"]["tuned_changes"] = {"poll_delay_s": "0.01 (source: arq docs)"}
    cells = [cell("throughput", "arq", params, 1, {"jobs_per_s": 16.0}), tuned,
             cell("throughput", "asyncio", params, 1, {"jobs_per_s": 790.0}, profile="tuned"),
             cell("throughput", "asyncio", params, 1, {"jobs_per_s": 795.0})]
    data = load(write_run(tmp_path / "run", cells, run_info(len(cells))))
    found = {p.backend: p for p in pairs(data, "tuned")}
    assert found["arq"].ratio == pytest.approx(220 / 16)
    assert found["arq"].changes == {"poll_delay_s": "0.01 (source: arq docs)"}
    assert found["asyncio"].changes == {}
    text = "\n".join(summary_lines(data, "tuned"))
    assert "default 16.0 jobs/s, tuned 220.0 jobs/s" in text
    assert "tuned poll_delay_s = 0.01 (source: arq docs)" in text
    assert "tuned = same as default" in text  # asyncio: the backend.toml line says why
    # the same settings twice: asyncio's 795 -> 790 is noise, said so, and a one-round
    # ratio is set beside that noise
    assert "(x0.99) same settings: the ratio is run-to-run noise" in text
    assert "x13.75) same settings" not in text
    assert "this run does not measure its own noise; same-settings pairs in this run moved by " \
           "up to x1.01" in found["arq"].line()


def test_a_ratio_over_an_unclean_window_says_which_side(tmp_path: Path) -> None:
    """A profile's ratio to default divides two steady-state figures: one from an unstable
    or producer-bound window is named, in the report and the terminal."""
    params = {"duration_ms": 0, "slots": 8, "jobs": 100}
    shaky = cell("throughput", "arq", params, 1, {"jobs_per_s": 900.0, "unstable": True},
                 profile="reliable")
    dry = cell("throughput", "arq", params, 1, {"jobs_per_s": 1000.0, "producer_bound": True})
    clean = [cell("throughput", "asyncio", params, 1, {"jobs_per_s": 700.0}),
             cell("throughput", "asyncio", params, 1, {"jobs_per_s": 600.0},
                  profile="reliable")]
    run_dir = write_run(tmp_path / "run", [dry, shaky, *clean], run_info(4))
    found = {p.backend: p for p in pairs(load(run_dir), "reliable")}
    one_round = "1 round a side: this run does not measure its own noise"
    assert found["arq"].caveat == f"unstable: reliable; producer-bound: default; {one_round}"
    assert found["asyncio"].caveat == one_round
    assert "(x0.90); unstable: reliable; producer-bound: default" in found["arq"].line()
    from reports import render
    assert "unstable: reliable; producer-bound: default" in render(run_dir).read_text()


def test_a_reused_cell_is_not_a_second_pair(tmp_path: Path) -> None:
    """Latency's max cell is the throughput noop cell: one pair, not two."""
    params = {"duration_ms": 0, "slots": 8}
    cells = []
    for profile, rate in (("default", 100.0), ("reliable", 80.0)):
        noop = cell("throughput", "arq", params, 1, {"jobs_per_s": rate}, profile=profile)
        noop["cell_dir"] = f"cells/{profile}-throughput"
        copy = cell("latency", "arq", {"rate": None, "rate_label": "max"}, 1,
                    {"jobs_per_s": rate}, profile=profile)
        copy["reused_from"] = noop["cell_dir"]
        cells += [noop, copy]
    found = pairs(load(write_run(tmp_path / "run", cells, run_info(len(cells)))), "reliable")
    assert [(p.scenario, p.ratio) for p in found] == [("throughput", 0.8)]
