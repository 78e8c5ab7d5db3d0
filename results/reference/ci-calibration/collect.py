"""Collects the runs calibrate.py reads: the gate's benchmark (docs/ci.md, "Noise, measured").

    .venv/bin/python results/reference/ci-calibration/collect.py OUT [--aa 6]
        [--backend asyncio,redis-raw,...] [--work /tmp/ci-calibration]

1. A/A: --aa runs of the workflow's command (`run --scenario throughput --quick
   --durations 0,10 --rounds 3`, or --rounds) over --backend, one after the other, each kept as a
   history entry in OUT/aa/.
2. Injected: for every library backend, a per-job CPU delay (`--inject-delay-us`) sized
   so that its noop jobs/s falls by --target (25%) against the median of the A/A runs.
   Noop probes of the backend alone (--probe-rounds rounds each, their median) refine the
   size (at most --probes), in steps of 0.1 us: the extra time per job a probe shows
   gives the parallelism the delay is spread over, and the next size follows from it.
   Then the workflow's command runs with that delay, the
   backend with its ceiling; its summary.json is kept as OUT/injected/<backend>.json
   (history refuses the knob) and OUT/injected/delays.json records every probe, the
   delay used and the measured rate.
Nothing else should run on the machine meanwhile; it takes about an hour for nine backends.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from adapters import CEILINGS
from harness.baselines import read_summary
from harness.cli import MAX_DELAY_US
from harness.compare.table import ceiling_of

WORKFLOW = ["--scenario", "throughput", "--quick", "--durations", "0,10"]
DELAY_STEP_US = 0.1  # the knob's step and range (harness/cli.py delay_microseconds)
NINE = "asyncio,redis-raw,amqp-raw,celery-redis,celery-rabbitmq,dramatiq-redis," \
       "dramatiq-rabbitmq,arq,rq"


def harness(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "harness", *args], check=True)


def noop_rate(summary: dict, backend: str, metric: str | None = None) -> float:
    """Median over the ok rounds of the backend's noop `metric`; by default jobs_per_loop
    (the machine's speed taken out, as the gate judges it) where every round has it,
    else jobs/s."""
    cells = [c["metrics"] for c in summary["cells"] if c["backend"] == backend
             and c["status"] == "ok" and c["params"]["duration_ms"] == 0]
    if metric is None:
        metric = "jobs_per_loop" if all("jobs_per_loop" in m for m in cells) else "jobs_per_s"
    return statistics.median(m[metric] for m in cells)


def keep(run: Path, folder: Path) -> Path:
    """`history add` the run into folder (an entry is a trimmed summary compare reads)."""
    folder.mkdir(parents=True, exist_ok=True)
    before = set(folder.glob("*.json"))
    harness("history", "add", str(run), "--dir", str(folder))
    (entry,) = set(folder.glob("*.json")) - before
    return entry


def next_delay(delay_us: float, base: float, slowed: float, target: float) -> float:
    """The delay that should bring base down by target, from one probe at delay_us.
    A job's time grows by delay / k for k busy cores: k = delay / (1/slowed - 1/base)."""
    wanted_extra = 1 / (base * (1 - target)) - 1 / base
    extra = 1 / slowed - 1 / base
    if extra <= wanted_extra / 10:  # no visible effect yet: grow fast
        return delay_us * 4
    return max(DELAY_STEP_US, delay_us * wanted_extra / extra)


def to_step(delay_us: float) -> float:
    """The delay in the knob's steps (0.1 us; asyncio's noop job takes about 20 us), within
    what the knob takes."""
    return min(MAX_DELAY_US, max(DELAY_STEP_US, round(delay_us, 1)))


def size_delay(backend: str, base: float, base_per_s: float, target: float, probes: int,
               rounds: int, work: Path) -> tuple[float, list[dict]]:
    """The delay toward `target`, from probes compared with `base` (noop_rate's measure);
    the first guess takes the time a job gains as if on one core, from jobs/s."""
    delay = to_step(1e6 * (1 / (base_per_s * (1 - target)) - 1 / base_per_s))
    tried: list[dict] = []
    for i in range(probes):
        out = work / f"probe-{backend}-{i}"
        harness("run", "--scenario", "throughput", "--quick", "--durations", "0",
                "--rounds", str(rounds), "--backend", backend,
                "--inject-delay-us", str(delay), "--out", str(out))
        rate = noop_rate(read_summary(out), backend)
        tried.append({"delay_us": delay, "rate": rate, "drop": round(1 - rate / base, 3)})
        if abs(1 - rate / base - target) <= 0.05:
            break
        delay = to_step(next_delay(delay, base, rate, target))
    return delay, tried  # the last hit, else the size the last miss points to


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--aa", type=int, default=6)
    parser.add_argument("--backend", default=NINE)
    parser.add_argument("--target", type=float, default=0.25)
    parser.add_argument("--probes", type=int, default=3)
    parser.add_argument("--probe-rounds", type=int, default=2, choices=range(1, 11),
                        help="of every probe (one round's noise is 10-20%% on noop rows)")
    parser.add_argument("--rounds", type=int, default=3, help="of every A/A and injected run")
    parser.add_argument("--delays", type=Path,
                        help="a delays.json of an earlier collection: its delays, no probes")
    parser.add_argument("--work", type=Path, default=Path("/tmp/ci-calibration"))
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    aa_dir, injected_dir = args.out / "aa", args.out / "injected"
    for folder in (aa_dir, injected_dir):
        shutil.rmtree(folder, ignore_errors=True)
    aa = []
    for i in range(args.aa):
        run = args.work / f"aa-{i + 1}"
        harness("run", *WORKFLOW, "--rounds", str(args.rounds), "--backend", args.backend,
                "--out", str(run))
        aa.append(read_summary(keep(run, aa_dir)))
    delays: dict[str, dict] = {}
    for backend in [b for b in args.backend.split(",") if b not in CEILINGS]:
        base = statistics.median(noop_rate(s, backend) for s in aa)
        if args.delays:
            delay, tried = json.loads(args.delays.read_text())[backend]["delay_us"], []
        else:
            base_per_s = statistics.median(noop_rate(s, backend, "jobs_per_s") for s in aa)
            delay, tried = size_delay(backend, base, base_per_s, args.target, args.probes,
                                      args.probe_rounds, args.work)
        run = args.work / f"injected-{backend}"
        # the ceiling first, as in the A/A runs: a ceiling measured right after a slowed
        # library ran about 13% lower (results/reference/ci-calibration-10-rounds)
        chosen = ",".join(b for b in (ceiling_of(backend), backend) if b)
        harness("run", *WORKFLOW, "--rounds", str(args.rounds), "--backend", chosen,
                "--inject-delay-us", str(delay), "--out", str(run))
        injected_dir.mkdir(parents=True, exist_ok=True)
        kept = injected_dir / f"{backend}.json"
        shutil.copy(run / "summary.json", kept)
        slowed = read_summary(kept)
        delays[backend] = {"base_median": base, "probes": tried, "delay_us": delay,
                           "slow_rate": noop_rate(slowed, backend)}
        (injected_dir / "delays.json").write_text(json.dumps(delays, indent=1) + "\n")


if __name__ == "__main__":
    main()
