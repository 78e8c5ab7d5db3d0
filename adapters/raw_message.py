"""The wire format of the raw ceilings (redis-raw, amqp-raw): one JSON object per job.

Both ceilings carry the same bytes, so their figures compare brokers, not
encodings.
"""

from __future__ import annotations

import json

from adapters.base import JobCall
from adapters.job import ceiling_job


def encode(job: JobCall) -> bytes:
    return json.dumps({"id": job.job_id, "sent": job.sent_ns, "spec": job.spec,
                       "p": job.payload}).encode()


def run_message(body: bytes) -> None:
    """Decode one message and run its job; a failing job has recorded ERROR itself."""
    message = json.loads(body)
    try:
        ceiling_job(message["id"], message["sent"], message["spec"], message["p"])
    except Exception:  # noqa: BLE001 - recorded as an ERROR event by the job
        pass
