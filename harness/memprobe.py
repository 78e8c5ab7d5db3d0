"""How much memory the queue costs its broker, measured from the driver.

Stdlib only (the driver runs in the backend's environment). A broker is
read by its kind (core/brokers/<kind>.py: Redis INFO used_memory and MEMORY
USAGE of the queue's keys, RabbitMQ's Erlang VM total and its queues'
memory read on the node in one erl_call, PostgreSQL's table sizes); in-process asyncio,
which has no broker, by the driver's Python heap (tracemalloc).
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from typing import Any
from urllib.parse import urlsplit

from core.brokers import kind_for_url

SAMPLE_GAP_S = 0.1
FIGURES = ("bytes", "queue_bytes", "disk_bytes")  # the numbers a reading may hold


def _python_heap(restart: bool, stop: bool) -> dict[str, Any]:
    """Python allocations of this process, traced from the first reading to the last.

    RSS would not do: a driver that ran earlier cells keeps freed memory and
    reuses it, so the delta of a later cell would be near zero.
    """
    if restart:
        tracemalloc.stop()
        gc.collect()
        tracemalloc.start()
    current = tracemalloc.get_traced_memory()[0]
    if stop:
        tracemalloc.stop()
    return {"bytes": current, "method": "tracemalloc: Python heap of the driver "
            "(in-process queue)"}


def _read(cell: dict[str, Any], restart: bool, stop: bool) -> dict[str, Any]:
    url = cell.get("broker_url") or ""
    if not url:
        return _python_heap(restart, stop)
    kind = kind_for_url(url)
    if kind is None:
        return {"bytes": None, "method": f"not measurable: no broker kind speaks "
                f"{urlsplit(url).scheme}://"}
    return kind.memory(url, cell.get("broker_ctl"), cell.get("queue"))


def measure_memory(cell: dict[str, Any], final: bool = False) -> dict[str, Any]:
    """One reading: {"bytes": int | None, "method": str, ...}; bytes is None when it
    cannot be measured. With cell["queue"], the queue's own figures too (see
    BrokerKind.memory).

    Called first (final=False) and last (final=True) around the jobs' enqueueing.
    """
    return _read(cell, restart=not final, stop=final)


def sample_memory(cell: dict[str, Any], samples: int, final: bool = False) -> dict[str, Any]:
    """`samples` readings SAMPLE_GAP_S apart: each figure is their median (None if any
    reading lacks it), and "samples" keeps every reading of each figure."""
    readings = []
    for index in range(samples):
        if index:
            time.sleep(SAMPLE_GAP_S)
        readings.append(_read(cell, restart=not final and index == 0,
                              stop=final and index == samples - 1))
    merged = dict(readings[-1])
    merged["samples"] = {}
    for name in FIGURES:
        values = [reading.get(name) for reading in readings]
        known = [value for value in values if value is not None]
        if known:
            merged["samples"][name] = values
            merged[name] = int(statistics.median(known)) if len(known) == samples else None
    return merged
