"""Reliable against default in the report and after a run (reports/profiles.py): the
headline figure in both profiles, the ratio that is the cost of durability, and the
settings the reliable cells ran with that differ."""

from __future__ import annotations

from pathlib import Path

import pytest

from reports import render
from reports.data import load
from reports.profiles import comparisons, pairs, summary_lines
from tests.test_report import cell, run_info, write_run


def test_reliable_figures_beside_default_ones(tmp_path: Path) -> None:
    params = {"duration_ms": 0, "slots": 8, "jobs": 100}
    cells = [cell("throughput", "celery-redis", params, 1, {"jobs_per_s": 1800.0}),
             cell("throughput", "celery-redis", params, 1, {"jobs_per_s": 1200.0},
                  profile="reliable"),
             cell("throughput", "arq", params, 1, {"jobs_per_s": 900.0}, profile="reliable")]
    cells[0]["settings"]["broker_persistence"] = "off"
    cells[1]["settings"]["broker_persistence"] = "aof-everysec"
    run_dir = write_run(tmp_path / "run", cells, run_info(len(cells)))
    data = load(run_dir)
    found = pairs(data, "reliable")
    assert [p.backend for p in found] == ["celery-redis"]  # arq ran in one profile only
    pair = found[0]
    assert (pair.default, pair.value, pair.profile) == (1800.0, 1200.0, "reliable")
    assert pair.ratio == pytest.approx(1200 / 1800)
    assert pair.changes == {"broker_persistence": "aof-everysec (default: off)",
                            "acks": "late (default: early)"}
    assert pairs(data, "tuned") == []
    assert [c["profile"] for c in comparisons(data)] == ["reliable"]
    text = "\n".join(summary_lines(data, "reliable"))
    assert ("throughput celery-redis duration_ms=0 slots=8: jobs_per_s default 1,800.0 jobs/s, "
            "reliable 1,200.0 jobs/s (x0.67)") in text
    assert "reliable broker_persistence = aof-everysec (default: off)" in text
    page = Path(render(run_dir)).read_text()
    assert "Reliable against default" in page and 'id="reliable"' in page
    assert "what durability costs" in page and 'id="tuned"' not in page
