"""Alternating rounds of byhand_drain.py and the exec'd bare loop (README.md)."""
import json
import statistics
import subprocess
import sys
from pathlib import Path

from core import interrupts
from harness.ceiling_check import bare_drain
from harness.runner import RunConfig, Runner
from scenarios.base import RunOptions

out, n, rounds = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
runner = Runner(RunConfig(scenarios=[], backends=["amqp-raw"], rounds=1, out=out,
                          options=RunOptions(quick=True), urls={}, marks_latest=False))
amqp_py = str(Path.cwd() / ".venvs/amqp/bin/python")
try:
    url = runner.brokers.url("amqp")
    hand, bare = [], []
    for r in range(rounds):
        for side in (("hand", "bare") if r % 2 == 0 else ("bare", "hand")):
            if side == "hand":
                done = subprocess.run([amqp_py, "byhand_drain.py", url, str(n), "2", "4"],
                                      capture_output=True, text=True)
                if done.returncode:
                    print(done.stderr[-3000:])
                    raise SystemExit(1)
                print(done.stderr.strip()[-200:], file=sys.stderr)
                hand.append(json.loads(done.stdout.strip().splitlines()[-1])["jobs_per_s"])
            else:
                bare.append(bare_drain("amqp", "amqp-raw", url, 2, n, "exec",
                                       {"prefetch": 16})["jobs_per_s"])
    ratios = [h / b for h, b in zip(hand, bare, strict=True)]
    print(json.dumps({"hand": [round(x) for x in hand], "bare_exec": [round(x) for x in bare],
                      "ratios": [round(x, 2) for x in ratios],
                      "median": round(statistics.median(ratios), 3)}))
finally:
    with interrupts.shielded():
        runner.release()
        runner.writer.finish(complete=True)
