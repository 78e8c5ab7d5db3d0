"""The cpu job kind and the injected delay spend CPU time, whatever else runs."""

from __future__ import annotations

import sys
import threading
import time

from adapters.job import _burn_cpu


def test_a_burn_spends_its_cpu_time_while_another_thread_holds_the_gil() -> None:
    """With a second thread taking the GIL every millisecond, a wall-clock loop gets
    about half of its time as CPU; the burn keeps going until it has spent all of it."""
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            pass

    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    rival = threading.Thread(target=spin)
    rival.start()
    try:
        cpu, wall = time.thread_time(), time.perf_counter()
        _burn_cpu(40.0)
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    finally:
        stop.set()
        rival.join()
        sys.setswitchinterval(interval)
    assert cpu >= 0.040
    assert wall > 0.060, "the rival never took the GIL: the test proved nothing"
