"""By-hand amqp-raw drain: N jobs preloaded, P worker processes, gate opened in bare mode;
prints jobs/s. An experiment record (README.md), not part of the product."""
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pika

from adapters.amqp_raw.adapter import declare_queue
from core.gate import set_bare, set_gate
from core.jobcount import COUNTS_DIR, read_counts
from core.recorder import ID_SPAN

url, n, procs, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
root = Path(tempfile.mkdtemp(prefix="queuebench-hand-"))
cell = root / "0001-hand"
(cell / "records").mkdir(parents=True)
set_gate(cell, False)
set_bare(cell, True)
queue = f"qb-hand-{os.getpid()}-{time.time_ns()}"
conn = pika.BlockingConnection(pika.URLParameters(url))
ch = conn.channel()
declare_queue(ch, queue, True)
props = pika.BasicProperties(delivery_mode=2)
for i in range(n):
    body = json.dumps({"id": ID_SPAN + i, "sent": 0, "spec": {"kind": "noop", "ms": 0},
                       "p": ""}).encode()
    ch.basic_publish("", queue, body, props)
if os.environ.get("QB_EXP_ABSORB"):
    t0 = time.monotonic()
    while ch.queue_declare(queue, passive=True).method.message_count < n:
        time.sleep(0.01)
    print(f"absorbed after {time.monotonic() - t0:.2f} s", file=sys.stderr)
if os.environ.get("QB_EXP_CLOSE"):
    conn.close()
env = {**os.environ, "QB_BROKER_URL": url, "QB_QUEUE": queue, "QB_CONSUMER_THREADS": str(threads),
       "QB_CONSUMERS": str(procs * threads), "QB_DURABLE": "1", "QB_GATE": "1",
       "QB_RECORDS_DIR": str(root), "PYTHONPATH": str(Path.cwd()), "PYTHONUNBUFFERED": "1"}
workers = [subprocess.Popen([sys.executable, "-m", "adapters.amqp_raw.worker"], env=env,
                            stdout=subprocess.PIPE, text=True) for _ in range(procs)]
for w in workers:
    w.stdout.readline()
time.sleep(float(os.environ.get("QB_EXP_PAUSE", "0.3")))
start = time.monotonic_ns()
set_gate(cell, True)
while True:
    total, latest = read_counts(cell / COUNTS_DIR)
    if total >= n:
        break
    time.sleep(0.02)
for w in workers:
    w.kill()
    w.wait()
if not os.environ.get("QB_EXP_CLOSE"):
    ch.queue_delete(queue)
    conn.close()
print(json.dumps({"jobs_per_s": n / ((latest - start) / 1e9)}))
