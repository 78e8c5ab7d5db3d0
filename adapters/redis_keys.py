"""Purging a cell's keys from Redis, shared by the Redis-backed adapters.

Adapters name every key of a cell after its queue and purge with SCAN
MATCH; a queue name must then match only itself, never act as a glob.
Stdlib only at import time: the caller brings its own redis-py client.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

CHUNK = 1000  # keys per SCAN step and per DEL


def glob_escape(text: str) -> str:
    """Escape Redis glob characters (* ? [ ] \\) so `text` matches literally."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def purge_keys(client: redis.Redis, keys: Iterable[str], patterns: Iterable[str]) -> None:
    """Delete `keys` and every key that matches one of the glob `patterns`."""
    found: set[str | bytes] = set(keys)
    for pattern in patterns:
        found.update(client.scan_iter(match=pattern, count=CHUNK))
    ordered = list(found)
    pipe = client.pipeline(transaction=False)
    for start in range(0, len(ordered), CHUNK):
        pipe.delete(*ordered[start:start + CHUNK])
    pipe.execute()
