"""How much memory the queue costs its broker, measured from the driver.

Stdlib only. Redis: INFO used_memory. RabbitMQ (harness-owned): the Erlang
VM's total allocated memory through rabbitmqctl. In-process asyncio: the
driver's Python heap (tracemalloc).
"""

from __future__ import annotations

import gc
import subprocess
import tracemalloc
from typing import Any

from core.urls import redis_info


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
    if url.startswith("redis"):
        info = redis_info(url, "memory")
        return {"bytes": int(info["used_memory"]), "method": "redis INFO used_memory"}
    ctl = cell.get("broker_ctl")
    if not ctl:
        return {"bytes": None, "method": "not measurable: a user-given RabbitMQ gives the "
                "harness no rabbitmqctl access"}
    done = subprocess.run([*ctl, "eval", "garbage_collect(), erlang:memory(total)."],
                          capture_output=True, text=True, timeout=60, check=False)
    try:
        return {"bytes": int(done.stdout.strip().splitlines()[-1]),
                "method": "rabbitmq erlang:memory(total)"}
    except (ValueError, IndexError):
        return {"bytes": None, "method": f"rabbitmqctl failed: {done.stderr.strip()[:200]}"}
