"""Consumer process of the redis-raw backend (see adapters/redis_raw.py)."""

from __future__ import annotations

import os

import redis

from adapters.raw_message import run_message
from core import procs

# Well below redis-py's default socket_timeout (5 s): a blocking pop that waits as long
# as the socket does ends in TimeoutError, which killed idle consumers.
BLOCK_S = 1


def requeue_orphans(client: redis.Redis, queue: str) -> None:
    """Move messages held by consumers that no longer run back to the queue."""
    for key in client.keys(f"{queue}:processing:*"):
        owner = int(key.decode().rsplit(":", 1)[1])
        if owner != os.getpid() and not procs.alive(owner):
            while client.lmove(key, queue, "RIGHT", "RIGHT"):
                pass


def main() -> None:
    client = redis.Redis.from_url(os.environ["QB_BROKER_URL"])
    queue = os.environ["QB_QUEUE"]
    reliable = os.environ.get("QB_PROFILE") == "reliable"
    processing = f"{queue}:processing:{os.getpid()}"
    if reliable:
        requeue_orphans(client, queue)
    client.ping()
    print("redis-raw consumer ready", flush=True)
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
