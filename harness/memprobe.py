"""How much memory the queue costs its broker, measured from the driver.

Stdlib only. Redis: INFO used_memory. RabbitMQ (harness-owned): the Erlang
VM's total allocated memory through rabbitmqctl. In-process asyncio: the
driver's own resident set size.
"""

from __future__ import annotations

import gc
import subprocess
from pathlib import Path
from typing import Any

from harness.urls import redis_info


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise OSError("no VmRSS in /proc/self/status")


def measure_memory(cell: dict[str, Any], adapter: Any = None) -> dict[str, Any]:
    """{"bytes": int | None, "method": str}; bytes is None when it cannot be measured."""
    url = cell.get("broker_url") or ""
    if not url:
        gc.collect()
        return {"bytes": _rss_bytes(), "method": "driver process RSS (in-process queue)"}
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
