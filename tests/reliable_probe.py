"""Runs inside a backend's environment for tests/test_reliable_rabbitmq.py.

    python tests/reliable_probe.py BACKEND PROFILE QUEUE WORKDIR   (broker URL: BROKER_URL_ENV)

Builds the backend's adapter in PROFILE, enqueues JOBS jobs through it with no worker
running, and prints its settings as JSON; the queue stays for the broker to be asked.
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
    adapter.close()
    print(json.dumps(settings, default=str))


if __name__ == "__main__":
    main()
