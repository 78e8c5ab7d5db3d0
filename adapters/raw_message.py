"""The wire format of the raw ceilings (redis-raw, amqp-raw, pg-raw): one JSON object
per job, and how a consumer runs the jobs of one fetch.

Every ceiling carries the same bytes, so their figures compare brokers, not
encodings.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from adapters.base import JobCall
from adapters.job import ceiling_job, ceiling_noops


def encode(job: JobCall) -> bytes:
    return json.dumps({"id": job.job_id, "sent": job.sent_ns, "spec": job.spec,
                       "p": job.payload}).encode()


def run_batch(bodies: Sequence[bytes], done: Callable[[Any, float], None] | None = None,
              keys: Sequence[Any] | None = None) -> None:
    """Decode a fetch's messages and run their jobs in order, then `done(key, started)`
    after each (a reliable consumer's ack; the key is the body unless `keys` are given;
    `started` is monotonic). A batch of noop jobs runs at once
    (adapters.job.ceiling_noops); any other runs one job at a time. A failing job has
    recorded ERROR itself."""
    keys = bodies if keys is None else keys
    started = time.monotonic()
    messages = [json.loads(body) for body in bodies]
    if ceiling_noops(messages):
        if done:
            for key in keys:
                done(key, started)
        return
    for key, message in zip(keys, messages, strict=True):
        started = time.monotonic()
        try:
            ceiling_job(message["id"], message["sent"], message["spec"], message["p"])
        except Exception:  # noqa: BLE001 - recorded as an ERROR event by the job
            pass
        if done:
            done(key, started)
