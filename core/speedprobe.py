"""The speed probe: pinned to one CPU, runs a fixed loop every INTERVAL_S and appends
(monotonic end time, CPU time the loop took) in ns to a file, until it is stopped.

CPU time (not wall time), so the loop waiting for the CPU behind the benchmark's
own processes is not counted: what is left is how fast the core ran the loop.

    python -m core.speedprobe FILE CPU
"""

from __future__ import annotations

import os
import struct
import sys
import time

LOOP_ITERATIONS = 10_000  # about 0.35-0.55 ms of CPU here; fixed, so runs compare
INTERVAL_S = 0.05
SAMPLE = struct.Struct("<qq")


def loop_cost_ns() -> int:
    began = time.thread_time_ns()
    total = 0
    for i in range(LOOP_ITERATIONS):
        total += i
    return time.thread_time_ns() - began


def main(path: str, cpu: int) -> None:
    os.sched_setaffinity(0, {cpu})
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    while True:
        cost = loop_cost_ns()
        os.write(fd, SAMPLE.pack(time.monotonic_ns(), cost))
        time.sleep(INTERVAL_S)


if __name__ == "__main__":
    try:
        main(sys.argv[1], int(sys.argv[2]))
    except KeyboardInterrupt:
        pass
