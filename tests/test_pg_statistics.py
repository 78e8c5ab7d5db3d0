"""After a held fill, a PostgreSQL backend's queue table has fresh planner statistics
(Adapter.backlog_filled): a real server, the backend's own environment."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import broker_url, require_env

REPO = Path(__file__).resolve().parent.parent
JOBS = 3000


@pytest.mark.slow
@pytest.mark.parametrize(("backend", "family", "table"), [
    ("procrastinate", "procrastinate", "procrastinate_jobs"),
    ("pgqueuer", "pgqueuer", "pgqueuer"),
])
def test_a_fill_leaves_the_planner_knowing_the_backlog(brokers, tmp_path, backend, family,
                                                        table) -> None:
    python = require_env(family)
    url = broker_url(brokers, "postgres")
    done = subprocess.run([str(python), str(REPO / "tests" / "analyze_probe.py"), backend, url,
                           str(tmp_path), str(JOBS), table], capture_output=True, text=True,
                          timeout=180, env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["analyzed_after_fill"], report
    assert report["planner_rows"] >= JOBS * 0.9, report  # not the empty table of the purge
