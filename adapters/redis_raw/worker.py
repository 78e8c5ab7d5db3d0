"""Consumer process of the redis-raw backend (see adapters/redis_raw/adapter.py).

Each consumer thread fetches a batch of at most BATCH messages and no more
than its fair share of the queue (ceil(length / consumers)), so a short
queue of long jobs still spreads over every consumer: in the default
profile one pipelined round trip of RPOP with a count and LLEN, the count
being the share of the length the previous fetch left (a Lua call that
reads the length first cost about 1 us per message more here); in the
`reliable` profile one Lua call (FETCH_SCRIPT) that moves the batch into
the consumer's processing list, each message LREMed after its job, the
LREMs pipelined (Acks). An empty queue falls back to one blocking pop.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import redis

from adapters.raw_consumers import CONSUMERS_ENV, run_consumers
from adapters.raw_message import DeferredAcks, run_batch
from adapters.redis_keys import glob_escape
from core import procs
from core.envnames import WORKER_PROFILE_ENV, WORKER_QUEUE_ENV, WORKER_URL_ENV

READY_LINE = "redis-raw consumer ready"
# Well below redis-py's default socket_timeout (5 s): a blocking pop that waits as long
# as the socket does ends in TimeoutError, which killed idle consumers.
BLOCK_S = 1
BATCH = 64  # messages per fetch at most
# The reliable fetch. KEYS: queue, processing list / ARGV: batch, consumers
FETCH_SCRIPT = """
local n = math.min(tonumber(ARGV[1]),
                   math.ceil(redis.call('LLEN', KEYS[1]) / tonumber(ARGV[2])))
if n < 1 then return {} end
local out = {}
for i = 1, n do
  local m = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
  if not m then break end
  out[i] = m
end
return out
"""


def processing_list(queue: str, owner: str) -> str:
    """The list a reliable consumer holds its messages in while their jobs run."""
    return f"{queue}:processing:{owner}"


def owner_pid(key: bytes) -> int:
    """The pid in a processing list's owner (`pid` or `pid.thread`)."""
    return int(key.decode().rsplit(":", 1)[1].split(".")[0])


def requeue_orphans(client: redis.Redis, queue: str) -> None:
    """Move messages held by consumers that no longer run back to the queue."""
    for key in client.keys(processing_list(glob_escape(queue), "*")):
        owner = owner_pid(key)
        if owner != os.getpid() and not procs.alive(owner):
            while client.lmove(key, queue, "RIGHT", "RIGHT"):
                pass


class Acks(DeferredAcks):
    """LREMs of finished jobs from the consumer's processing list, in one pipeline."""

    def __init__(self, client: redis.Redis, processing: str) -> None:
        super().__init__()
        self.pipe = client.pipeline(transaction=False)
        self.processing = processing

    def send(self, keys: list[bytes]) -> None:
        for raw in keys:
            self.pipe.lrem(self.processing, 1, raw)
        self.pipe.execute()


class Pops:
    """The default profile's fetch: RPOP with a count and LLEN in one round trip, the
    count a fair share of the length the previous fetch left (1 at first).

    Both commands are packed and sent on a connection of the fetch's own: redis-py's
    pipeline object cost about a fifth of a noop drain's rate here (a bare 8-process
    loop: 249k msg/s through a pipeline, 314k packed, 302k for RPOP alone; medians of
    5). The client's retry policy reconnects as the client itself would."""

    def __init__(self, client: redis.Redis, queue: str, consumers: int) -> None:
        self.connection = client.connection_pool.get_connection()
        self.queue = queue
        self.consumers = consumers
        self.share = 1

    def _round_trip(self) -> tuple[list[bytes] | None, int]:
        connection = self.connection
        connection.send_packed_command(connection.pack_commands(
            [("RPOP", self.queue, self.share), ("LLEN", self.queue)]))
        return connection.read_response(), connection.read_response()

    def next(self) -> list[bytes]:
        batch, left = self.connection.retry.call_with_retry(
            self._round_trip, lambda _error: self.connection.disconnect())
        self.share = max(1, min(BATCH, math.ceil(left / self.consumers)))
        return batch or []


def consumer(client: redis.Redis, queue: str, reliable: bool, index: int
             ) -> Callable[[], None]:
    processing = processing_list(queue, f"{os.getpid()}.{index}")
    consumers = int(os.environ.get(CONSUMERS_ENV, "1"))
    acks = Acks(client, processing)
    if reliable:
        moves = client.register_script(FETCH_SCRIPT)

        def fetch() -> list[bytes]:
            return moves(keys=[queue, processing], args=[BATCH, consumers])
    else:
        fetch = Pops(client, queue, consumers).next

    def loop() -> None:
        while True:
            batch = fetch()
            if not batch:
                if reliable:
                    raw = client.blmove(queue, processing, BLOCK_S, "RIGHT", "LEFT")
                else:
                    popped = client.brpop([queue], timeout=BLOCK_S)
                    raw = popped[1] if popped else None
                batch = [raw] if raw is not None else []
            run_batch(batch, acks.ran if reliable else None)
            acks.flush()

    return loop


def main() -> None:
    queue = os.environ[WORKER_QUEUE_ENV]
    reliable = os.environ.get(WORKER_PROFILE_ENV) == "reliable"
    pool = redis.ConnectionPool.from_url(os.environ[WORKER_URL_ENV])
    if reliable:
        requeue_orphans(redis.Redis(connection_pool=pool), queue)
    redis.Redis(connection_pool=pool).ping()
    run_consumers(lambda index: consumer(redis.Redis(connection_pool=pool), queue, reliable,
                                         index), READY_LINE)


if __name__ == "__main__":
    main()
