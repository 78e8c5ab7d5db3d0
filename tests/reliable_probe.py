"""Runs inside a backend's environment for tests/test_reliable_rabbitmq.py.

    python tests/reliable_probe.py BACKEND PROFILE QUEUE WORKDIR [hold]   (broker URL:
    BROKER_URL_ENV)

Builds the backend's adapter in PROFILE, enqueues JOBS jobs through it with no worker
running, and prints its settings as JSON; the queue stays for the broker to be asked.
With `hold`, the adapter (its connections and channels) stays open until a line comes
on stdin, so the broker can be asked about them too.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from adapters import load_adapter
from adapters.base import AdapterConfig, JobCall
from core.envnames import BROKER_URL_ENV

JOBS = 3


def main() -> None:
    backend, profile, queue, workdir = *sys.argv[1:4], Path(sys.argv[4])
    config = AdapterConfig(backend=backend, broker_url=os.environ[BROKER_URL_ENV], slots=2,
                           profile=profile, results=False, queue=queue,
                           records_dir=workdir / "cells", log_dir=workdir / "logs")
    adapter = load_adapter(backend)(config)
    adapter.purge()
    for job_id in range(JOBS):
        adapter.enqueue(JobCall(job_id, time.monotonic_ns(), {"kind": "noop", "ms": 0}, "x"))
    settings = adapter.settings()
    print(json.dumps(settings, default=str), flush=True)
    if sys.argv[5:] == ["hold"]:
        sys.stdin.readline()
    adapter.close()


if __name__ == "__main__":
    main()
