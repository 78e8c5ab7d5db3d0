"""Consumer process of the redis-raw backend (see adapters/redis_raw/adapter.py)."""

from __future__ import annotations

import os

import redis

from adapters.raw_message import run_message
from adapters.redis_keys import glob_escape
from core import procs

READY_LINE = "redis-raw consumer ready"
# Well below redis-py's default socket_timeout (5 s): a blocking pop that waits as long
# as the socket does ends in TimeoutError, which killed idle consumers.
BLOCK_S = 1


def processing_list(queue: str, owner: str) -> str:
    """The list a reliable consumer holds its message in while the job runs."""
    return f"{queue}:processing:{owner}"


def requeue_orphans(client: redis.Redis, queue: str) -> None:
    """Move messages held by consumers that no longer run back to the queue."""
    for key in client.keys(processing_list(glob_escape(queue), "*")):
        owner = int(key.decode().rsplit(":", 1)[1])
        if owner != os.getpid() and not procs.alive(owner):
            while client.lmove(key, queue, "RIGHT", "RIGHT"):
                pass


def main() -> None:
    client = redis.Redis.from_url(os.environ["QB_BROKER_URL"])
    queue = os.environ["QB_QUEUE"]
    reliable = os.environ.get("QB_PROFILE") == "reliable"
    processing = processing_list(queue, str(os.getpid()))
    if reliable:
        requeue_orphans(client, queue)
    client.ping()
    print(READY_LINE, flush=True)
    while True:
        if reliable:
            raw = client.blmove(queue, processing, BLOCK_S, "RIGHT", "LEFT")
        else:
            popped = client.brpop([queue], timeout=BLOCK_S)
            raw = popped[1] if popped else None
        if raw is None:
            continue
        run_message(raw)
        if reliable:
            client.lrem(processing, 1, raw)


if __name__ == "__main__":
    main()
