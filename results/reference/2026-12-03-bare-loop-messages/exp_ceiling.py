"""Experiment: the amqp-raw ceiling check alone (sweep + 4 rounds), as the self-test runs it."""
import json
import sys
from pathlib import Path

from core import interrupts
from harness.observer import ObserverProbe
from harness.runner import RunConfig, Runner
from harness.selftest import ceiling_row
from harness.speed import SpeedMeter
from scenarios.base import RunOptions

out = Path(sys.argv[1])
options = RunOptions(quick=True)
config = RunConfig(scenarios=[], backends=["amqp-raw"], rounds=1, out=out, options=options,
                   urls={}, marks_latest=False)
runner = Runner(config)
meter = SpeedMeter(out / "speed")
try:
    probe = ObserverProbe()
    runner.scenarios[probe.name] = probe
    meter.start()
    row = ceiling_row(runner, probe.cell, "amqp", "amqp-raw", meter)
finally:
    with interrupts.shielded():
        meter.stop()
        runner.release()
        runner.writer.finish(complete=True)
keys = ("processes", "sweep", "ceiling_bare_mode_per_s", "bare_loop_per_s", "bare_exec_loop_per_s",
        "pair_ratios", "ratio", "ratio_to_exec", "status", "reason")
print(json.dumps({k: row.get(k) for k in keys}))
