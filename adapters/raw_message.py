"""The wire format of the raw ceilings (redis-raw, amqp-raw, pg-raw): one JSON object
per job, how a consumer runs the jobs of one fetch, and how a reliable consumer
defers its acks (DeferredAcks).

Every ceiling carries the same bytes, so their figures compare brokers, not
encodings.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from adapters.base import JobCall
from adapters.job import InjectedFailure, ceiling_job, ceiling_noops

# Pending acks are sent at a fetch's end, or once this long passed since the oldest of
# their jobs started (a long job is acked at once: few duplicates after a kill).
ACK_FLUSH_S = 0.005
NO_RETURN_STORE = "a raw broker client stores no return value"  # its results setting


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
    messages = list(map(json.loads, bodies))
    if _run_noops(messages, keys, done, started):
        return
    for key, message in zip(keys, messages, strict=True):
        started = time.monotonic()
        try:
            ceiling_job(message["id"], message["sent"], message["spec"], message["p"])
        except InjectedFailure:  # recorded as an ERROR event by the job; any other error
            pass  # is the harness's own and stops the consumer, so the cell fails
        if done:
            done(key, started)


def run_if_noops(bodies: Sequence[bytes], done: Callable[[Any, float], None] | None = None,
                 keys: Sequence[Any] | None = None) -> bool:
    """run_batch's fast path alone: True once a batch of noop jobs of one cell ran (and
    `done` was called for each); False, with nothing run, for any other batch."""
    return _run_noops(list(map(json.loads, bodies)),
                      bodies if keys is None else keys, done, time.monotonic())


def _run_noops(messages: list[dict], keys: Sequence[Any],
               done: Callable[[Any, float], None] | None, started: float) -> bool:
    if not ceiling_noops(messages):
        return False
    if done:
        for key in keys:
            done(key, started)
    return True


class DeferredAcks:
    """A reliable consumer's acks of finished jobs, sent together (one pipeline, one
    statement, one multiple-ack): `ran` is run_batch's `done`, and sends them as soon as
    ACK_FLUSH_S passed since the oldest pending job started; `flush` sends them now."""

    def __init__(self) -> None:
        self.pending: list[Any] = []
        self.oldest = 0.0

    def ran(self, key: Any, started: float) -> None:
        """A job that started at `started` (monotonic) has ended: ack its key, maybe now."""
        if not self.pending:
            self.oldest = started
        self.pending.append(key)
        if time.monotonic() - self.oldest > ACK_FLUSH_S:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.send(self.pending)
            self.pending = []

    def send(self, keys: list[Any]) -> None:
        """Ack `keys`, in the order their jobs ended."""
        raise NotImplementedError
