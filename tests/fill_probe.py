"""Runs inside a backend's environment for the forked-fill test.

    python tests/fill_probe.py BACKEND BROKER_URL WORKDIR JOBS

Fills JOBS noop jobs through Producer.fill with no workers running, as the
sustained phase does while its gate holds them, and prints a JSON report:
the queue's length as the adapter's broker holds it and the pids that
recorded a SENT for each job.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import redis

from adapters import load_adapter
from adapters.base import AdapterConfig
from core.protocol import JobSpec
from core.recorder import RECORD, Event, Recorder
from harness.driver.producer import BATCH, Producer


def main() -> None:
    backend, url, workdir, jobs = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
    config = AdapterConfig(backend=backend, broker_url=url, slots=2, profile="default",
                           results=False, queue="fillprobe", records_dir=workdir,
                           log_dir=workdir / "logs", cpu_count=2)
    adapter = load_adapter(backend)(config)
    adapter.purge()
    producer = Producer(adapter, config, Recorder(workdir / "records"), JobSpec("noop", 0), 16)
    producer.fill(0, jobs, BATCH)
    queued = redis.Redis.from_url(url).llen(config.queue)
    adapter.purge()
    adapter.close()
    sent = [(job, pid) for path in (workdir / "records").glob("*.bin")
            for job, event, _attempt, pid, _t in RECORD.iter_unpack(path.read_bytes())
            if event == Event.SENT]
    print(json.dumps({"queued": queued, "sent_ids": sorted({job for job, _ in sent}),
                      "sent_rows": len(sent), "pids": sorted({pid for _, pid in sent})}))


if __name__ == "__main__":
    main()
