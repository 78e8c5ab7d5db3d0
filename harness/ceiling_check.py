"""How close the raw ceilings come to a bare client loop (the self-test's ceiling check).

Per broker, on the self-test's harness-owned brokers:
- the layout sweep of harness/ceiling_layout.py as a full run makes it
  (instrumented noop cells, 1 s windows);
- at the fastest process count, the ceiling's drain of a preloaded noop
  batch in bare mode (no per-job records: what the recording costs is the
  observer effect, reported apart);
- a bare loop of the same client with the same consumer count and no
  harness code (harness/ceiling_bare.py, in the backend's interpreter) on
  the same number of jobs, its consumers forked from one process;
- the same bare loop with every consumer started as a new interpreter, as
  the harness starts its workers.
ROUNDS rounds of the three drains, in the order ceiling, forked loop, exec'd loop,
then the reverse, so the verdict's two drains are always adjacent.
Goal: ceiling / forked loop >= 0.9, i.e. the consumer design leaves little on the
table. The exec'd loop is for information: its ratio to the forked loop is what the
start method costs (forked consumers share their parent's pages, the client library
among them), and the ceiling's ratio to it is roughly the rest: the harness's code,
its driver and the ceiling's layout (P processes of consumer threads). Roughly,
because that pair of drains is not adjacent (the two ends of a round) and medians do
not multiply.
A drain lasts about 2 s, and on a shared VM a core's speed can change between two
drains (harness/speed.py): two drains of the same side differed by half in one
self-test here. So each round gives the ratio of two adjacent drains, which share a
stretch of machine speed, and the verdict is on the median of those ratios. With the
speed meter running, the verdict's drains are also shown per probe loop (jobs/s x
the loop's mean cost over the drain), for information: the verdict stays on the
plain ratio, because the ceiling (P processes of threads, the driver) and the bare
loop (one process per consumer) load the cores differently, and the probe slows
with that load.
Each drain also reads its consumers' CPU time per job (the ceiling's worker
processes from the gate's opening to the last job, each bare consumer from its go
to its loop's end). A drain's pace is not the consumers' alone: on this VM a
RabbitMQ drain of the same loop runs at one of two speeds, the slower with the
broker spending more CPU per message, whichever side drains (docs/methodology.md,
"Consumer CPU per job"). The consumers' CPU per job changes much less with that, so
the forked loop's over the ceiling's (`cpu_ratio`) is mostly what the consumer design
costs per job; it is shown, and the verdict stays on throughput.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Protocol

from adapters import BACKENDS, CEILINGS
from harness.ceiling_bare import LOOPS, PREFETCH, SETTING_ENV, BareLoopError
from harness.ceiling_layout import CellRunner, fastest, sweep
from harness.envs import python_of
from harness.speed import SpeedMeter, per_loop
from scenarios.base import CellPlan, RunOptions

GOAL = 0.9
BARE_SECONDS = 2.0  # of work at the ceiling's rate
MIN_BARE_JOBS = 20_000
ROUNDS = 4  # even: the ceiling and the exec'd loop each run first as often
# the order of each round: A B C, then C B A, so a machine that drifts during the check
# slows every side alike, and the verdict's two sides (ceiling, forked bare loop) are
# always adjacent
SIDES = ("ceiling", "bare", "bare_exec")
ORDERS = (SIDES, SIDES[::-1])
SIDE_START_METHOD = {"bare": "fork", "bare_exec": "exec"}


def drain_orders(rounds: int) -> list[tuple[str, ...]]:
    """The sides of each round, in the order they drain."""
    return [ORDERS[round_no % 2] for round_no in range(rounds)]


class DrainCell(Protocol):
    """The self-test's preloaded-batch drain cell (harness.observer.ObserverProbe.cell)."""

    def __call__(self, backend: str, jobs: int, bare: bool = False,
                 processes: int | None = None, alternate_s: float | None = None
                 ) -> CellPlan: ...


def ceilings_by_broker() -> dict[str, str]:
    """broker kind -> the layout-sweep backend on it that others name as their ceiling."""
    return {BACKENDS[name].broker or "": name for name in sorted(CEILINGS)
            if BACKENDS[name].layout_sweep}


def bare_layout(broker: str, slots: int, processes: int) -> tuple[int, dict[str, int]]:
    """The bare loop's consumers (one connection each) and their settings, as many
    connections as the ceiling consumes with: redis-raw and pg-raw one per slot,
    amqp-raw one per process with a prefetch of PREFETCH per slot of that process
    (adapters/amqp_raw/worker.py)."""
    if broker == "amqp":
        return processes, {"prefetch": PREFETCH * slots // processes}
    return slots, {}


def bare_drain(broker: str, backend: str, url: str, consumers: int, jobs: int,
               start_method: str = "fork", settings: dict[str, int] | None = None
               ) -> dict[str, Any]:
    """{jobs_per_s, start_ns, end_ns} of the bare loop (harness/ceiling_bare.py) in the
    ceiling's environment, its consumers started by `start_method`, with `settings`
    (bare_layout) in their environment."""
    with tempfile.TemporaryDirectory(prefix="queuebench-tmp-",
                                     ignore_cleanup_errors=True) as scratch:
        # its own TMPDIR: what multiprocessing leaves in one (pymp-*) goes with it
        done = subprocess.run([str(python_of(BACKENDS[backend].family)), "-m",
                               "harness.ceiling_bare", broker, url, str(jobs), str(consumers),
                               start_method],
                              capture_output=True, text=True, timeout=300,
                              cwd=Path(__file__).resolve().parent.parent,
                              env={**os.environ, "TMPDIR": scratch,
                                   **{SETTING_ENV[name]: str(value)
                                      for name, value in (settings or {}).items()}})
    if done.returncode:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        raise BareLoopError(f"the {start_method} bare {broker} loop failed: {lines[-1]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def rates_per_loop(rates: list[float], costs_us: list[float | None]) -> list[float] | None:
    """Each drain's jobs per probe loop; None unless the meter timed every drain."""
    timed = [cost for cost in costs_us if cost is not None]
    if len(timed) != len(rates):
        return None
    return [per_loop(rate, cost) for rate, cost in zip(rates, timed, strict=True)]


def per_round(ceiling: list[float], bare: list[float]) -> list[float]:
    """Ceiling / bare of the two drains of each round."""
    return [c / b for c, b in zip(ceiling, bare, strict=True)]


def consumer_cpu_ratio(bare: list[float | None], ceiling: list[float | None]
                       ) -> float | None:
    """Median over the rounds of the bare loop's consumer CPU per job / the ceiling's
    (above 1: the ceiling's consumers spend less per job); None unless every drain of
    both was read. Shown, not judged: it is the consumers' own cost, which the broker's
    side of a drain changes much less than the drain's rate (see the module doc)."""
    if any(c is None for c in (*bare, *ceiling)):
        return None
    return round(statistics.median(per_round([float(c) for c in bare if c is not None],
                                             [float(c) for c in ceiling if c is not None])),
                 3)


def check_ceiling(run_cell: CellRunner, drain_cell: DrainCell, broker: str, url: str,
                  slots: int = 8, meter: SpeedMeter | None = None) -> dict[str, Any]:
    """One broker's ceiling against its bare loop, with the sweep behind the layout;
    with a running `meter`, also per probe loop (shown, not judged)."""
    backend = ceilings_by_broker()[broker]
    options = RunOptions(slots=slots)  # a full run's sweep: 1 s points rank the layouts
    rates = sweep(run_cell, backend, options)
    best = fastest(rates)
    row: dict[str, Any] = {"backend": backend, "slots": slots, "sweep": rates,
                           "processes": best, "goal": GOAL}
    if best is None:
        return {**row, "status": "failed", "reason": "no sweep point ran"}
    consumers, settings = bare_layout(broker, slots, best)
    row.update(consumers=consumers, bare_settings=settings)
    if broker not in LOOPS:
        return {**row, "status": "failed",
                "reason": f"no bare {broker} loop in harness/ceiling_bare.py yet"}
    jobs = max(MIN_BARE_JOBS, int((rates[best] or 0) * BARE_SECONDS))
    drained_per_s: dict[str, list[float]] = {side: [] for side in SIDES}
    cpu_per_job: dict[str, list[float | None]] = {side: [] for side in SIDES}
    costs: dict[str, list[float | None]] = {"ceiling": [], "bare": []}  # the verdict's
    for order in drain_orders(ROUNDS):
        for side in order:
            if side in SIDE_START_METHOD:
                try:
                    drained = bare_drain(broker, backend, url, consumers, jobs,
                                         SIDE_START_METHOD[side], settings)
                except BareLoopError as exc:
                    return {**row, "status": "failed", "reason": str(exc)}
                bounds = (int(drained["start_ns"]), int(drained["end_ns"]))
            else:
                result = run_cell(1, drain_cell(backend, jobs, bare=True, processes=best))
                if result["status"] != "ok":
                    return {**row, "status": "failed",
                            "reason": result.get("reason") or "no figure"}
                drained = result["metrics"]
                bounds = tuple(drained["drain_ns"])
            drained_per_s[side].append(float(drained["jobs_per_s"]))
            cpu_per_job[side].append(drained.get("cpu_us_per_job"))
            if side in costs:
                costs[side].append(meter.window_cost_us(*bounds) if meter else None)
    pair_ratios = per_round(drained_per_s["ceiling"], drained_per_s["bare"])
    ratio = statistics.median(pair_ratios)
    steady = [rates_per_loop(drained_per_s[side], costs[side]) for side in ("ceiling", "bare")]
    ratio_per_loop = (statistics.median(per_round(steady[0], steady[1]))
                      if steady[0] and steady[1] else None)
    exec_ratios = per_round(drained_per_s["bare_exec"], drained_per_s["bare"])
    harness_ratios = per_round(drained_per_s["ceiling"], drained_per_s["bare_exec"])
    cpu_ratio = consumer_cpu_ratio(cpu_per_job["bare"], cpu_per_job["ceiling"])
    return {**row, "status": "ok", "jobs": jobs,
            "ceiling_bare_mode_per_s": drained_per_s["ceiling"],
            "bare_loop_per_s": drained_per_s["bare"],
            "bare_exec_loop_per_s": drained_per_s["bare_exec"],
            "exec_over_fork": round(statistics.median(exec_ratios), 3),
            "ratio_to_exec": round(statistics.median(harness_ratios), 3),
            "pair_ratios": [round(r, 3) for r in pair_ratios], "ratio": round(ratio, 3),
            "ceiling_probe_us": costs["ceiling"], "bare_probe_us": costs["bare"],
            "ratio_per_loop": None if ratio_per_loop is None else round(ratio_per_loop, 3),
            "cpu_us_per_job": {side: [None if c is None else round(c, 2) for c in cpus]
                               for side, cpus in cpu_per_job.items()},
            "cpu_ratio": cpu_ratio, "passed": ratio >= GOAL}
