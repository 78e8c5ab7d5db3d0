"""Payload size impact: 64 B to 1 MiB per job.

Each cell preloads noop jobs carrying the payload (throughput and enqueue
rate, as in the throughput scenario), then sends single jobs one at a time
on the idle system for latency. The job count shrinks with the size so a
cell holds at most a fixed number of payload bytes in the broker.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from scenarios.base import CellPlan, RunOptions
from scenarios.common import drain_per_s, enqueue_per_s, job_counts
from scenarios.latency import per_job_times
from scenarios.stats import histogram_of, percentiles_ms

SIZES = (64, 1024, 16 * 1024, 256 * 1024, 1024 * 1024)
QUICK_SIZES = (64, 1024 * 1024)


class Payload:
    name = "payload"
    description = "throughput, enqueue rate and latency from 64 B to 1 MiB payloads"

    def plan(self, backend: str, options: RunOptions) -> list[CellPlan]:
        budget = (32 if options.quick else 128) * 1024 * 1024
        most = 1000 if options.quick else 2000
        probes = 5 if options.quick else 10
        limit = 3.0 if options.quick else 5.0
        cells = []
        for size in options.payload_sizes or (QUICK_SIZES if options.quick else SIZES):
            jobs = max(50, min(most, budget // size))
            cells.append(CellPlan(
                scenario=self.name, backend=backend,
                params={"payload_bytes": size, "slots": options.slots, "jobs": jobs},
                workload={"spec": {"kind": "noop", "ms": 0}, "payload_bytes": size, "phases": [
                    {"type": "batch", "jobs": jobs, "preload": True, "time_limit_s": limit,
                     "enqueue_limit_s": limit / 2},
                    # a slow backend leaves part of the batch queued: probe an idle system
                    {"type": "idle", "jobs": probes, "gap_ms": 20, "time_limit_s": 30,
                     "purge_first": True},
                ]},
                timeout_s=limit + 120, profile=options.profile,
            ))
        return cells

    def analyze(self, plan: CellPlan, records: pd.DataFrame, meta: dict[str, Any]
                ) -> dict[str, Any]:
        probe_first = meta["phases"][1]["first_id"]
        batch = records[records["job_id"] < probe_first]
        probes = per_job_times(records[records["job_id"] >= probe_first])
        latency = percentiles_ms(histogram_of((probes["start"] - probes["intended"]).dropna()))
        return {
            "jobs_per_s": drain_per_s(batch, meta)["jobs_per_s"],
            "enqueue_per_s": enqueue_per_s(batch),
            "latency_ms": {"p50": latency["p50"], "p99": latency["p99"]},
            "latency_samples": int(probes["start"].notna().sum()),
            **job_counts(batch),
        }


PAYLOAD = Payload()
