"""`python -m harness selftest`: is the harness itself ever the bottleneck?

Measures (1) the recorder's cost per record in this process, and (2) for
each chosen backend, the open-loop producer's maximum send rate (one call
per job, one to three producer processes, no worker running: the producer's
own capacity) against that backend's own noop throughput. The producer
must be able to offer at least twice what the fastest broker-backed
backend absorbs. In a latency cell producer and workers share the CPU;
the producer's lateness there is reported as schedule lag.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from adapters import BACKENDS
from core.recorder import Event, Recorder
from harness.runner import RunConfig, Runner
from scenarios.base import CellPlan, RunOptions
from scenarios.common import events
from scenarios.throughput import THROUGHPUT

REQUIRED_HEADROOM = 2.0
PROBE_RATE = 500_000.0  # far above any backend: the producer sends flat out
PRODUCER_COUNTS = (1, 2, 3)


def recorder_cost_us(records: int = 100_000, repeats: int = 5) -> float:
    """Median microseconds per Recorder.record() call (one os.write each)."""
    timings = []
    with tempfile.TemporaryDirectory() as tmp:
        recorder = Recorder(Path(tmp))
        for _ in range(repeats):
            began = time.perf_counter()
            for job_id in range(records):
                recorder.record(job_id, Event.START)
            timings.append((time.perf_counter() - began) / records * 1e6)
    return statistics.median(timings)


class ProducerProbe:
    """A pseudo-scenario: send flat out on an open-loop schedule, report the send rate."""

    name = "producer-probe"
    description = "open-loop producer's maximum send rate"

    def plan(self, backend: str, options: RunOptions) -> list[CellPlan]:
        seconds = 1.5
        return [CellPlan(scenario=self.name, backend=backend,
                         params={"producers": producers},
                         workload={"spec": {"kind": "noop", "ms": 0}, "phases": [
                             {"type": "open", "rate": PROBE_RATE, "duration_s": seconds,
                              "producers": producers, "time_limit_s": 0,
                              "max_jobs": 60_000, "without_workers": True}]},
                         timeout_s=120)
                for producers in PRODUCER_COUNTS]

    def analyze(self, plan: CellPlan, records: pd.DataFrame, meta: dict[str, Any]
                ) -> dict[str, Any]:
        sent = events(records, Event.SENT)["t_ns"]
        start = meta["phases"][0]["load_start_ns"]
        span = (sent.max() - start) / 1e9 if len(sent) else 0
        return {"send_per_s": len(sent) / span if span > 0 else 0.0, "sent": int(len(sent))}


def run(backends: list[str], out: Path, urls: dict[str, str | None]) -> dict[str, Any]:
    """Run the self-test; returns the report (also written to out/selftest.json)."""
    options = RunOptions(quick=True)
    config = RunConfig(scenarios=[], backends=backends, rounds=1, out=out, options=options,
                       urls=urls)
    runner = Runner(config)
    probe = ProducerProbe()
    runner.scenarios[probe.name] = probe
    report: dict[str, Any] = {"recorder_us_per_record": recorder_cost_us(), "backends": {}}
    try:
        for backend in backends:
            noop = THROUGHPUT.plan(backend, options)[0]
            cells = [noop, *probe.plan(backend, options)]
            results = [runner.run_cell(1, cell) for cell in cells]
            for result in results:
                runner.writer.add(result)
            failed = [r for r in results if r["status"] != "ok"]
            if failed:
                report["backends"][backend] = {"status": failed[0]["status"],
                                               "reason": failed[0]["reason"]}
                continue
            report["backends"][backend] = {
                "status": "ok",
                "jobs_per_s": results[0]["metrics"]["jobs_per_s"],
                "send_per_s": {r["params"]["producers"]: r["metrics"]["send_per_s"]
                               for r in results[1:]},
            }
    finally:
        runner.brokers.stop_all()
        runner.writer.finish(complete=True)
    measured = {b: r for b, r in report["backends"].items()
                if r["status"] == "ok" and BACKENDS[b].broker is not None}
    if measured:
        fastest = max(measured, key=lambda b: measured[b]["jobs_per_s"])
        best_send = max(max(r["send_per_s"].values()) for r in measured.values())
        headroom = best_send / measured[fastest]["jobs_per_s"]
        report.update(fastest_backend=fastest, headroom=headroom,
                      passed=bool(headroom >= REQUIRED_HEADROOM))
    else:
        report.update(fastest_backend=None, headroom=None, passed=False)
    return report


def render(report: dict[str, Any]) -> str:
    lines = [f"recorder: {report['recorder_us_per_record']:.2f} us per record (median of 5 x "
             "100,000 os.write calls)"]
    for backend, row in report["backends"].items():
        if row["status"] != "ok":
            lines.append(f"{backend:18} {row['status']}: {row['reason']}")
            continue
        sends = ", ".join(f"{n} producer{'s' if n > 1 else ''} {v:,.0f}/s"
                          for n, v in row["send_per_s"].items())
        lines.append(f"{backend:18} absorbs {row['jobs_per_s']:,.0f} jobs/s (noop); "
                     f"producer alone sends {sends}")
    if report["fastest_backend"]:
        verdict = "PASS" if report["passed"] else "FAIL"
        lines.append(f"{verdict}: the producer offers {report['headroom']:.1f}x what the fastest "
                     f"broker-backed backend ({report['fastest_backend']}) absorbs "
                     f"(needed: {REQUIRED_HEADROOM:.0f}x)")
    else:
        lines.append("FAIL: no broker-backed backend could be measured")
    return "\n".join(lines)
