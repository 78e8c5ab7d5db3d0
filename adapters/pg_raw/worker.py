"""Consumer process of the pg-raw backend (see adapters/pg_raw/adapter.py).

Each consumer thread has its own autocommit connection and claims a batch
with one statement: the oldest rows nobody holds, `FOR UPDATE SKIP LOCKED`,
at most BATCH and no more than its fair share of the queue (the id span of
the unclaimed rows / consumers), so a short queue of long jobs still spreads
over every consumer. Right after a claim that came back full (within
FRESH_S) the queue is still long and the share is BATCH anyway, so a fast
drain skips computing it: its two index look-ups per claim were a large part
of a preloaded noop drain's cost. A claim after longer jobs computes it.
The default profile deletes the batch as it claims it; the reliable one
marks it with the consumer's pid and deletes each row after its job (the
DELETEs batched, as redis-raw pipelines its LREMs). An empty queue waits
for the insert trigger's NOTIFY. A restarted server is reconnected to; rows
a dead process held are released by the next consumer that starts.
"""

from __future__ import annotations

import os
import time

import psycopg
from psycopg import sql

from adapters.raw_consumers import CONSUMERS_ENV, run_consumers
from adapters.raw_message import DeferredAcks, run_batch
from core import procs
from core.envnames import WORKER_PROFILE_ENV, WORKER_QUEUE_ENV, WORKER_URL_ENV

READY_LINE = "pg-raw consumer ready"
BATCH = 64  # rows per claim at most
WAIT_S = 1.0  # an idle consumer claims again after this long even without a NOTIFY
RECONNECT_S = 30.0  # how long a consumer waits for a killed server to come back
FRESH_S = 0.05  # a full claim this recent says the queue is still long

# The unclaimed rows' id span over the consumers, at most BATCH (LEAST ignores a NULL).
_SHARE = ("(SELECT LEAST(%(batch)s, ceil((max(id) - min(id) + 1) / %(consumers)s::numeric))"
          "::int FROM {table} WHERE owner IS NULL)")


def claim(reliable: bool, limit: str) -> str:
    """The claim statement: the oldest `limit` unclaimed rows, deleted (default) or
    marked with the consumer's pid (reliable)."""
    oldest = ("ARRAY(SELECT id FROM {table} WHERE owner IS NULL ORDER BY id LIMIT " + limit
              + " FOR UPDATE SKIP LOCKED)")
    if reliable:
        return ("UPDATE {table} SET owner = %(pid)s WHERE id = ANY(" + oldest
                + ") RETURNING id, body")
    return "DELETE FROM {table} WHERE id = ANY(" + oldest + ") RETURNING id, body"


ACK = "DELETE FROM {table} WHERE id = ANY(%s)"
OWNERS = "SELECT DISTINCT owner FROM {table} WHERE owner IS NOT NULL"
RELEASE = "UPDATE {table} SET owner = NULL WHERE owner = ANY(%s)"


def statement(template: str, queue: str) -> sql.Composed:
    """`template` with {table} set to the queue's table (named after the queue)."""
    return sql.SQL(template).format(table=sql.Identifier(queue))


def release_orphans(conn: psycopg.Connection, queue: str) -> None:
    """Give the rows held by consumers that no longer run back to the queue."""
    owners = [row[0] for row in conn.execute(statement(OWNERS, queue))]
    dead = [owner for owner in owners if owner != os.getpid() and not procs.alive(owner)]
    if dead:
        conn.execute(statement(RELEASE, queue), [dead])


class Consumer(DeferredAcks):
    """One consumer thread's connection, claims and pending acks (reliable: the DELETEs
    of finished jobs' rows, one statement per flush)."""

    def __init__(self, url: str, queue: str, reliable: bool, consumers: int) -> None:
        super().__init__()
        self.url, self.queue, self.reliable = url, queue, reliable
        self.claim_shared = statement(claim(reliable, _SHARE), queue)
        self.claim_full = statement(claim(reliable, "%(batch)s"), queue)
        self.full_at: float | None = None  # when the last claim came back with BATCH rows
        self.ack_sql = statement(ACK, queue)
        self.args = {"batch": BATCH, "consumers": consumers, "pid": os.getpid()}
        self.conn = self._connect()

    def _connect(self) -> psycopg.Connection:
        conn = psycopg.connect(self.url, autocommit=True)
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.queue)))
        return conn

    def _reconnect(self) -> None:
        """After the server went away: connect again, for up to RECONNECT_S."""
        self.conn.close()
        deadline = time.monotonic() + RECONNECT_S
        while True:
            try:
                self.conn = self._connect()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def send(self, keys: list[int]) -> None:
        """DELETE the finished jobs' rows, through a new connection if the server was
        restarted (rows marked by a live consumer are never released by anyone else)."""
        while True:
            try:
                self.conn.execute(self.ack_sql, [keys])
                return
            except psycopg.OperationalError:
                self._reconnect()

    def claim_batch(self) -> list[tuple[int, bytes]]:
        """(id, body) of the rows this claim took: up to BATCH within FRESH_S of a full
        claim, else at most the fair share."""
        fresh = self.full_at is not None and time.monotonic() - self.full_at < FRESH_S
        batch = self.conn.execute(self.claim_full if fresh else self.claim_shared, self.args,
                                  binary=True).fetchall()
        self.full_at = time.monotonic() if len(batch) == BATCH else None
        return batch

    def serve(self) -> None:
        while True:
            batch = self.claim_batch()
            if not batch:
                for _ in self.conn.notifies(timeout=WAIT_S, stop_after=1):
                    pass
                continue
            run_batch([body for _, body in batch], self.ran if self.reliable else None,
                      keys=[job_id for job_id, _ in batch])
            self.flush()

    def loop(self) -> None:
        while True:
            try:
                self.serve()
            except psycopg.OperationalError:
                self._reconnect()


def main() -> None:
    url, queue = os.environ[WORKER_URL_ENV], os.environ[WORKER_QUEUE_ENV]
    reliable = os.environ.get(WORKER_PROFILE_ENV) == "reliable"
    consumers = int(os.environ.get(CONSUMERS_ENV, "1"))
    if reliable:
        with psycopg.connect(url, autocommit=True) as conn:
            release_orphans(conn, queue)
    run_consumers(lambda index: Consumer(url, queue, reliable, consumers).loop, READY_LINE)


if __name__ == "__main__":
    main()
