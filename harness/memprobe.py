"""How much memory the queue costs its broker, measured from the driver.

Stdlib only (the driver runs in the backend's environment). A broker is
read by its kind (core/brokers/<kind>.py: Redis INFO used_memory, RabbitMQ's
Erlang VM total through rabbitmqctl); in-process asyncio, which has no
broker, by the driver's Python heap (tracemalloc).
"""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any
from urllib.parse import urlsplit

from core.brokers import kind_for_url


def _python_heap(final: bool) -> dict[str, Any]:
    """Python allocations of this process, traced from the first reading to the last.

    RSS would not do: a driver that ran earlier cells keeps freed memory and
    reuses it, so the delta of a later cell would be near zero.
    """
    if not final:
        tracemalloc.stop()
        gc.collect()
        tracemalloc.start()
    current = tracemalloc.get_traced_memory()[0]
    if final:
        tracemalloc.stop()
    return {"bytes": current, "method": "tracemalloc: Python heap of the driver "
            "(in-process queue)"}


def measure_memory(cell: dict[str, Any], final: bool = False) -> dict[str, Any]:
    """{"bytes": int | None, "method": str}; bytes is None when it cannot be measured.

    Called before (final=False) and after (final=True) the jobs are enqueued.
    """
    url = cell.get("broker_url") or ""
    if not url:
        return _python_heap(final)
    kind = kind_for_url(url)
    if kind is None:
        return {"bytes": None, "method": f"not measurable: no broker kind speaks "
                f"{urlsplit(url).scheme}://"}
    return kind.memory(url, cell.get("broker_ctl"))
