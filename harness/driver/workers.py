"""The group's adapter and whether its workers run: they outlive single cells."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from adapters import load_adapter
from adapters.base import Adapter, AdapterConfig
from core.envnames import GATE_ENV
from core.protocol import CellSpec

# At the group's end its queue is purged and removed next and every result is written,
# and after a fault cell's late watch nothing its workers do is counted any more: a
# graceful stop has nothing left to save (taskiq's took its whole 5 s grace, and Celery's
# and Dramatiq's warm shutdowns take longer than this one). The process trees are
# SIGKILLed after it, so nothing is left either way.
CLOSE_GRACE_S = 0.2


class WorkerSet:
    """One adapter for a group of cells with identical backend settings."""

    def __init__(self, first: CellSpec, cells_root: Path, log_dir: Path) -> None:
        os.environ[GATE_ENV] = "1"  # workers inherit it: their jobs wait at their cell's gate
        self.config = AdapterConfig(
            backend=first.backend, broker_url=first.broker_url, slots=first.slots,
            profile=first.profile, results=first.results, queue=first.queue,
            records_dir=cells_root, log_dir=log_dir, options=dict(first.options),
        )
        self.adapter: Adapter = load_adapter(first.backend)(self.config)
        self.running = False

    def ensure_running(self) -> float | None:
        """Start the workers if they are not up; the seconds it took, or None."""
        if self.running:
            return None
        began = time.monotonic()
        self.adapter.start_workers()
        self.running = True
        return round(time.monotonic() - began, 3)

    def stop(self, grace_s: float | None = None) -> float:
        """Stop the workers if they run; the seconds it took."""
        began = time.monotonic()
        if self.running:
            self.running = False
            self.adapter.stop_workers(grace_s)
        return round(time.monotonic() - began, 3)

    def close(self) -> None:
        """Workers stopped, queue purged and removed, connections released."""
        try:
            self.stop(CLOSE_GRACE_S)
            self.adapter.purge()
            self.adapter.remove_queue()
        except Exception as exc:  # noqa: BLE001 - results are written; e.g. a killed broker
            print(f"cleanup after the group failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        finally:
            self.adapter.close()
