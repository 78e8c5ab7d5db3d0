"""How the raw ceilings (redis-raw, amqp-raw, pg-raw) lay out their consumers.

`slots` threads spread over a few processes: options["processes"] of them,
which a run sets to the count its layout sweep found fastest on the machine
(harness/ceiling_layout.py), else as many as the CPUs allow
(adapters/slots.py). Each thread runs one job at a time, so `slots` jobs may
run at once as with every other backend; a killed process takes its threads'
jobs with it. redis-raw and pg-raw run a consumer per thread (run_consumers);
amqp-raw consumes on one connection per process and hands jobs to its threads
(adapters/amqp_raw/worker.py).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from adapters.base import AdapterConfig
from adapters.slots import slot_map
from core.envnames import WORKER_PROFILE_ENV, WORKER_QUEUE_ENV, WORKER_URL_ENV

THREADS_ENV = "QB_CONSUMER_THREADS"
CONSUMERS_ENV = "QB_CONSUMERS"  # the consumers of all processes together (the slots)


def consumer_env(config: AdapterConfig, threads: int) -> dict[str, str]:
    """What every raw ceiling's worker processes are told: broker, queue, profile, their
    consumer threads and how many consumers there are in all."""
    return {WORKER_URL_ENV: config.broker_url or "", WORKER_QUEUE_ENV: config.queue,
            WORKER_PROFILE_ENV: config.profile, THREADS_ENV: str(threads),
            CONSUMERS_ENV: str(config.slots)}


def layout(config: AdapterConfig) -> tuple[int, int]:
    """(processes, consumer threads per process) for this config."""
    wanted = config.options.get("processes")
    if wanted is None:
        return slot_map(config.slots, config.cpu_count)
    processes = max(1, min(int(wanted), config.slots))
    if config.slots % processes:
        raise ValueError(f"processes={processes} must divide slots={config.slots}")
    return processes, config.slots // processes


def layout_source(config: AdapterConfig) -> str:
    """Where the process count came from, for the adapter's settings."""
    sweep = config.options.get("layout_sweep")
    if sweep:
        rates = ", ".join(f"{n}: {rate:,.0f}" for n, rate in sweep.items() if rate)
        return f"fastest in this run's sweep (processes: noop jobs/s = {rates})"
    if "processes" in config.options:
        return "options.processes"
    return "CPU count (no sweep in this run)"


def run_consumers(start: Callable[[int], Callable[[], None]], ready_line: str) -> None:
    """Set up THREADS_ENV consumers with `start(index)` (which returns its loop), print
    `ready_line` once all are set up, run the loops in threads; return when one ends."""
    loops = [start(index) for index in range(int(os.environ.get(THREADS_ENV, "1")))]
    print(ready_line, flush=True)
    done = threading.Event()

    def body(loop: Callable[[], None]) -> None:
        try:
            loop()
        finally:
            done.set()

    for loop in loops:
        threading.Thread(target=body, args=(loop,), daemon=True).start()
    done.wait()
