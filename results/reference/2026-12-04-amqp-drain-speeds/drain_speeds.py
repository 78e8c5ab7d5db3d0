"""Drains of the bare pika loop, one after the other on one private RabbitMQ: how fast
each ran, and the CPU per message of its consumers and of the broker.

    .venvs/amqp/bin/python results/reference/2026-12-04-amqp-drain-speeds/drain_speeds.py \
        OUT.json [DRAINS] [CONSUMERS] [PREFETCHES]

The loop is the self-test's (harness/ceiling_bare.py: fill, fork CONSUMERS consumers,
drain), at each prefetch per consumer of PREFETCHES (comma-separated, default 16, the
self-test's for 2 consumers) in turn, DRAINS times each; nothing else changes from one
drain to the next. The broker's CPU is its process tree's (beam.smp and its helpers)
from before the consumers connect to their end; the consumers' is their own from their
go.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from core import procs  # noqa: E402
from core.brokers.rabbitmq import RabbitMQ  # noqa: E402
from harness import ceiling_bare  # noqa: E402

JOBS = 60_000


def broker_cpu_s(server: RabbitMQ) -> float:
    assert server.proc is not None
    return procs.cpu_seconds([server.proc.pid, *procs.descendants(server.proc.pid)])


def main() -> None:
    out = Path(sys.argv[1])
    drains = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    consumers = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    prefetches = [int(p) for p in (sys.argv[4] if len(sys.argv) > 4 else "16").split(",")]
    data = Path(tempfile.mkdtemp(prefix="queuebench-drain-speeds-"))
    server = RabbitMQ(data_dir=data)
    server.start()
    rows = []
    try:
        for number in range(drains * len(prefetches)):
            prefetch = prefetches[number % len(prefetches)]
            os.environ[ceiling_bare.PREFETCH_ENV] = str(prefetch)  # the forked consumers'
            ceiling_bare.amqp_fill(server.url, JOBS)
            time.sleep(0.5)  # the fill's last writes settle, as a worker start would let them
            before = broker_cpu_s(server)
            start, end, consumer_cpu = ceiling_bare.forked(ceiling_bare.amqp_drain,
                                                           server.url, consumers)
            broker = broker_cpu_s(server) - before
            rows.append({"drain": number + 1, "prefetch": prefetch,
                         "jobs_per_s": round(JOBS / ((end - start) / 1e9)),
                         "consumer_cpu_us_per_job": round(consumer_cpu * 1e6 / JOBS, 2),
                         "broker_cpu_us_per_job": round(broker * 1e6 / JOBS, 2)})
            print(rows[-1], flush=True)
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)
    out.write_text(json.dumps({"jobs": JOBS, "consumers": consumers,
                               "rabbitmq": server.version, "drains": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
