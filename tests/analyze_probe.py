"""Runs inside a PostgreSQL backend's environment for the statistics test.

    python tests/analyze_probe.py BACKEND BROKER_URL WORKDIR JOBS TABLE

Truncates the backend's tables (its purge), fills JOBS noop jobs through
Producer.fill with no workers running, as the sustained phase does, and
prints a JSON report: whether TABLE was analyzed after the fill and the row
count the planner then assumes (pg_class.reltuples).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from adapters import load_adapter
from adapters.base import AdapterConfig
from core.pgwire import Connection
from core.protocol import JobSpec
from core.recorder import Recorder
from harness.driver.producer import BATCH, Producer

STATS = """SELECT s.last_analyze, c.reltuples FROM pg_stat_user_tables s
           JOIN pg_class c ON c.oid = s.relid WHERE s.relname = '{table}'"""


def main() -> None:
    backend, url, workdir = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    jobs, table = int(sys.argv[4]), sys.argv[5]
    config = AdapterConfig(backend=backend, broker_url=url, slots=2, profile="default",
                           results=False, queue="analyzeprobe", records_dir=workdir,
                           log_dir=workdir / "logs", cpu_count=1)
    adapter = load_adapter(backend)(config)
    adapter.purge()
    with Connection(url) as conn:  # stdlib client: no backend environment lacks it
        before = conn.query(STATS.format(table=table))
        producer = Producer(adapter, config, Recorder(workdir / "records"), JobSpec("noop", 0),
                            16)
        producer.fill(0, jobs, BATCH)
        after = conn.query(STATS.format(table=table))
    adapter.purge()
    adapter.close()
    analyzed_before = before[0][0] if before else None
    analyzed_after = after[0][0] if after else None
    print(json.dumps({"analyzed_after_fill": analyzed_after is not None
                      and analyzed_after != analyzed_before,
                      "planner_rows": float(after[0][1]) if after and after[0][1] else None}))

if __name__ == "__main__":
    main()
