"""How `slots` (jobs that may run at once) map onto worker processes.

Backends that run several jobs in one process (threads, coroutines) get
as many processes as the CPUs allow, each running the same share of the
slots, so they may use every core as the process-per-slot backends do.
"""

from __future__ import annotations


def slot_map(slots: int, cpu_count: int) -> tuple[int, int]:
    """(processes, jobs per process): the most processes that divide `slots` within the CPUs."""
    processes = max(d for d in range(1, max(1, min(slots, cpu_count)) + 1) if slots % d == 0)
    return processes, slots // processes
