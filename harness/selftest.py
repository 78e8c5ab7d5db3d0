"""`python -m harness selftest`: is the harness itself ever the bottleneck?

Measures (1) the recorder's cost per record in this process, (2) for each
chosen backend without a ceiling (the in-process baseline and the raw
ceilings: the fastest), the open-loop producer's maximum send rate (one
call per job, one to three producer processes, no worker running: the
producer's own capacity) against that backend's own noop throughput, and
(3) for each chosen broker-backed backend, the observer effect
(harness.observer), and (4) each raw ceiling against a bare client loop
(harness.ceiling_check). The producer must be able to offer at least twice what
the fastest broker-backed backend absorbs. In a latency cell producer and
workers share the CPU; the producer's lateness there is reported as
schedule lag.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from adapters import BACKENDS
from core import interrupts
from core.brokers.base import BrokerError
from core.protocol import DriverReport
from core.recorder import Event, Recorder
from harness.ceiling_check import DrainCell, ceilings_by_broker, check_ceiling
from harness.job_path import job_path_us
from harness.observer import (
    ObserverMeasurement,
    ObserverSettings,
    Probe,
    broker_backed,
    observer_file,
    render_observer,
)
from harness.runner import RunConfig, Runner, one_line
from harness.speed import SpeedMeter
from scenarios.base import CellPlan, RunOptions
from scenarios.common import events
from scenarios.throughput import NOOP_PAYLOAD_BYTES, THROUGHPUT

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


class ProducerProbe(Probe):
    """Send flat out on an open-loop schedule, report the send rate."""

    name = "producer-probe"
    description = "open-loop producer's maximum send rate"

    def plan(self, backend: str, options: RunOptions) -> list[CellPlan]:
        seconds = 1.5
        return [CellPlan(scenario=self.name, backend=backend,
                         params={"producers": producers},
                         workload={"spec": {"kind": "noop", "ms": 0},
                                   "payload_bytes": NOOP_PAYLOAD_BYTES, "phases": [
                             {"type": "open", "rate": PROBE_RATE, "duration_s": seconds,
                              "producers": producers, "time_limit_s": 0,
                              "max_jobs": 60_000, "without_workers": True}]},
                         timeout_s=120)
                for producers in PRODUCER_COUNTS]

    def analyze(self, plan: CellPlan, records: pd.DataFrame, report: DriverReport
                ) -> dict[str, Any]:
        sent = events(records, Event.SENT)["t_ns"]
        start = report.phases[0].load_start_ns or 0
        span = (sent.max() - start) / 1e9 if len(sent) else 0
        return {"send_per_s": len(sent) / span if span > 0 else 0.0, "sent": int(len(sent))}


def producer_headroom(runner: Runner, backends: list[str], options: RunOptions
                      ) -> dict[str, Any]:
    """Each backend's noop throughput and the producer's send rates alone."""
    probe = ProducerProbe()
    runner.scenarios[probe.name] = probe
    rows: dict[str, Any] = {}
    for backend in backends:
        noop = THROUGHPUT.plan(backend, options)[0]
        cells = [noop, *probe.plan(backend, options)]
        results = [runner.run_cell(1, cell) for cell in cells]
        for result in results:
            runner.writer.add(result)
        failed = [r for r in results if r["status"] != "ok"]
        if failed:
            rows[backend] = {"status": failed[0]["status"], "reason": failed[0]["reason"]}
            continue
        rows[backend] = {
            "status": "ok",
            "jobs_per_s": results[0]["metrics"]["jobs_per_s"],
            "send_per_s": {r["params"]["producers"]: r["metrics"]["send_per_s"]
                           for r in results[1:]},
        }
    return rows


def headroom_verdict(rows: dict[str, Any]) -> dict[str, Any]:
    measured = {b: r for b, r in rows.items()
                if r["status"] == "ok" and BACKENDS[b].broker is not None}
    if not measured:  # None: nothing it applies to (no backend, or none with a broker)
        brokered = [b for b in rows if BACKENDS[b].broker is not None]
        return {"tightest_backend": None, "headroom": None,
                "passed": False if brokered else None}
    # each backend's own producer into its own broker, and the tightest of them judged
    ratios = {b: max(r["send_per_s"].values()) / r["jobs_per_s"] for b, r in measured.items()}
    tightest = min(ratios, key=ratios.__getitem__)
    return {"tightest_backend": tightest, "headroom": ratios[tightest],
            "passed": bool(ratios[tightest] >= REQUIRED_HEADROOM)}


def ceiling_row(runner: Runner, drain_cell: DrainCell, broker: str, ceiling: str,
                meter: SpeedMeter) -> dict[str, Any]:
    """The ceiling check of one broker, or a failed row when the broker cannot be had
    (no binary, a server that would not start)."""
    try:
        url = runner.brokers.url(broker)
    except BrokerError as exc:
        return {"backend": ceiling, "sweep": {}, "status": "failed",
                "reason": one_line(str(exc))}
    return check_ceiling(runner.run_cell, drain_cell, broker, url, meter=meter)


def say(step: str) -> None:
    """What the self-test measures now, on stderr (stdout is its report, or --json's)."""
    print(f"selftest: {step} ...", file=sys.stderr, flush=True)


def run(backends: list[str], out: Path, urls: dict[str, str | None],
        observer: ObserverSettings) -> dict[str, Any]:
    """Run the self-test; returns the report (the caller saves it)."""
    options = RunOptions(quick=True)
    config = RunConfig(scenarios=[], backends=backends, rounds=1, out=out, options=options,
                       urls=urls, marks_latest=False)
    runner = Runner(config)
    meter = SpeedMeter(out / "speed")  # the ceiling check's drains, per probe loop
    report: dict[str, Any] = {}
    try:  # from here on, an interrupt still releases the runner's brokers and folders
        report.update(recorder_us_per_record=recorder_cost_us(), job_path_us=job_path_us())
        fastest = [b for b in backends if BACKENDS[b].ceiling is None]
        if fastest:
            say(f"producer headroom: {', '.join(fastest)}")
        report["backends"] = producer_headroom(runner, fastest, options)
        measurement = ObserverMeasurement(runner, observer)
        observed: dict[str, Any] = {}
        for backend in broker_backed(backends):
            say(f"observer effect: {backend}")
            observed[backend] = measurement.measure(backend)
        meter.start()
        report["ceilings"] = {}
        for broker, ceiling in ceilings_by_broker().items():
            if ceiling in backends:
                say(f"ceiling check: {ceiling} against a bare {broker} client loop")
                report["ceilings"][broker] = ceiling_row(runner, measurement.probe.cell,
                                                         broker, ceiling, meter)
    finally:
        with interrupts.shielded():  # a second Ctrl-C must not leave a broker running
            meter.stop()
            runner.release()
            runner.writer.finish(complete=interrupts.pending() is None)
        interrupts.check()  # a signal that came during the clean-up still stops it
    report.update(headroom_verdict(report["backends"]))
    report["observer"] = observer_file(observed, observer)
    report["observer_effect"] = {b: r.get("effect") for b, r in observed.items()}
    report["observer_effect_interval"] = {b: r.get("effect_interval")
                                          for b, r in observed.items()}
    report["observer_passed"] = all(r["status"] == "ok" and r["passed"]
                                    for r in observed.values())
    report["ceilings_passed"] = all(r["status"] == "ok" and r["passed"]
                                    for r in report["ceilings"].values())
    return report


def succeeded(report: dict[str, Any]) -> bool:
    """Every part that was measured met its goal."""
    return (report["passed"] is not False and report["observer_passed"]
            and report["ceilings_passed"])


def render(report: dict[str, Any]) -> str:
    lines = [f"recorder: {report['recorder_us_per_record']:.2f} us per record (median of 5 x "
             "100,000 os.write calls)"]
    if report.get("job_path_us"):  # none: not timed, or a self-test from before it was
        warm, cold = report["job_path_us"]["warm"], report["job_path_us"]["after_wait"]
        lines.append(f"ceiling per-job path (bare mode, one message): run_batch "
                     f"{warm['run_batch']:.1f} us against json.loads {warm['json_loads']:.1f} us "
                     f"in a tight loop; after a wait on a socket {cold['run_batch']:.1f} us "
                     f"against {cold['json_loads']:.1f} us")
        batch = report["job_path_us"].get("batch")  # none in a self-test from before it
        if batch:
            lines.append(f"ceiling per-job path (a fetched batch of {batch['size']}), per "
                         f"message: json.loads {batch['json_loads']:.2f} us, run_batch bare "
                         f"{batch['bare']:.2f} us, recorded {batch['recorded']:.2f} us "
                         f"(recording {batch['recorded'] - batch['bare']:+.2f} us)")
    for backend, row in report["backends"].items():
        if row["status"] != "ok":
            lines.append(f"{backend:18} {row['status']}: {row['reason']}")
            continue
        sends = ", ".join(f"{n} producer{'s' if n > 1 else ''} {v:,.0f}/s"
                          for n, v in row["send_per_s"].items())
        lines.append(f"{backend:18} absorbs {row['jobs_per_s']:,.0f} jobs/s (noop); "
                     f"producer alone sends {sends}")
    if report["tightest_backend"]:
        verdict = "PASS" if report["passed"] else "FAIL"
        lines.append(f"{verdict}: the producer offers {report['headroom']:.2f}x what "
                     f"{report['tightest_backend']} absorbs, the tightest of the broker-backed "
                     f"backends (each against its own broker; needed: "
                     f"{REQUIRED_HEADROOM:.0f}x)")
    elif report["passed"] is False:
        lines.append("FAIL: no broker-backed backend could be measured")
    elif report["backends"]:
        lines.append("producer headroom: not judged (no broker-backed backend was chosen, "
                     "so nothing to compare the producer with)")
    else:
        lines.append("producer headroom: not judged (it is timed against the raw ceilings "
                     "and asyncio, and none was chosen)")
    lines += render_observer(report["observer"]["backends"])
    if report["observer_effect"]:
        lines.append(f"{'PASS' if report['observer_passed'] else 'FAIL'}: observer effect "
                     "within its goal for every backend")
    lines += render_ceilings(report["ceilings"])
    return "\n".join(lines)


def settings_text(settings: dict[str, int] | None) -> str:
    """', prefetch 16 each' for a bare loop's settings; nothing without any."""
    return "".join(f", {name} {value} each" for name, value in (settings or {}).items())


def render_ceilings(rows: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    for broker, row in rows.items():
        if row["status"] != "ok":
            lines.append(f"{row['backend']:18} ceiling not measured: {row['reason']}")
            continue
        sweep = ", ".join(f"{n}: {r:,.0f}" if r else f"{n}: failed"
                          for n, r in row["sweep"].items())
        verdict = "PASS" if row["passed"] else "FAIL"
        ceiling = statistics.median(row["ceiling_bare_mode_per_s"])
        bare = statistics.median(row["bare_loop_per_s"])
        steady = (f", {row['ratio_per_loop']:.2f}x per probe loop"
                  if row.get("ratio_per_loop") is not None else "")
        pairs = row.get("pair_ratios") or []
        paired = (f"the median of {len(pairs)} adjacent pairs' ratios, "
                  f"{min(pairs):.2f}x to {max(pairs):.2f}x, not the medians' ratio"
                  if pairs else "")
        lines.append(f"{verdict}: {row['backend']} (bare mode, {row['processes']} processes) "
                     f"drains {ceiling:,.0f} jobs/s (median), {row['ratio']:.2f}x a bare "
                     f"{broker} client loop with {row['consumers']} forked consumer processes"
                     f"{settings_text(row.get('bare_settings'))} ({bare:,.0f}/s; "
                     f"{paired}{'; ' if paired else ''}{row['jobs']:,} jobs{steady}; goal >= "
                     f"{row['goal']:.1f}x); sweep by processes (instrumented): {sweep}")
        if row.get("bare_exec_loop_per_s"):
            executed = statistics.median(row["bare_exec_loop_per_s"])
            lines.append(f"  the same loop with each consumer exec'd, as the harness starts "
                         f"its workers: {executed:,.0f}/s ({row['exec_over_fork']:.2f}x the "
                         f"forked one); {row['backend']} is {row['ratio_to_exec']:.2f}x that "
                         f"(median of paired ratios), roughly what the harness's code, driver "
                         f"and layout cost")
        if row.get("cpu_ratio") is not None:
            cpu = {side: statistics.median(values)
                   for side, values in row["cpu_us_per_job"].items()}
            lines.append(f"  consumer CPU per job (median): {row['backend']} "
                         f"{cpu['ceiling']:.1f} us, forked loop {cpu['bare']:.1f} us, exec'd "
                         f"loop {cpu['bare_exec']:.1f} us; the forked loop's / the ceiling's "
                         f"{row['cpu_ratio']:.2f}x (median of paired ratios): the consumers' "
                         f"own cost, which the broker's pace moves much less than the rate")
    return lines
