"""Memory per queued job: enqueue N jobs with no worker running.

The broker's memory is read before and after (Redis INFO used_memory,
RabbitMQ's Erlang VM total, the driver's RSS for in-process asyncio);
bytes_per_job = delta / N, overhead = bytes_per_job - payload.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from scenarios.base import CellFailed, CellPlan, RunOptions

SIZES = (64, 16 * 1024)  # two points: the per-job overhead and how it scales with size
QUICK_SIZES = (1024,)


class Memory:
    name = "memory"
    description = "broker memory per queued job (no workers) at several payload sizes"

    def plan(self, backend: str, options: RunOptions) -> list[CellPlan]:
        most = 2000 if options.quick else 5000
        budget = (64 if options.quick else 256) * 1024 * 1024
        return [
            CellPlan(
                scenario=self.name, backend=backend,
                params={"payload_bytes": size, "jobs": min(most, budget // size)},
                workload={"spec": {"kind": "noop", "ms": 0}, "payload_bytes": size,
                          "phases": [{"type": "fill", "jobs": min(most, budget // size)}]},
                timeout_s=180, profile=options.profile,
            )
            for size in options.payload_sizes or (QUICK_SIZES if options.quick else SIZES)
        ]

    def analyze(self, plan: CellPlan, records: pd.DataFrame, meta: dict[str, Any]
                ) -> dict[str, Any]:
        phase = meta["phases"][0]
        before, after = phase["memory_before"], phase["memory_after"]
        if before["bytes"] is None or after["bytes"] is None:
            raise CellFailed(after["method"])
        jobs = plan.params["jobs"]
        per_job = (after["bytes"] - before["bytes"]) / jobs
        return {
            "bytes_per_job": per_job,
            "overhead_bytes_per_job": per_job - plan.params["payload_bytes"],
            "broker_bytes": after["bytes"] - before["bytes"],
            "measured": after["method"],
        }


MEMORY = Memory()
