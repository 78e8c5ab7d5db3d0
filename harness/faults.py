"""Broker kills for the crash-recovery scenario: the coordinator's side.

The driver cannot kill a broker the coordinator owns, so they talk through
two files in the cell directory: the driver writes fault-request.json
({"action": "broker-kill"}); the coordinator, polling while the driver
runs, kill -9s the broker, starts it again on the same port and data dir,
and answers in fault-done.json ({"kill_ns", "back_ns"} on the shared
monotonic clock, or {"error"}). The broker kind decides which server dies:
one of the cell's own, started with the cell's persistence options (Redis),
or the pool's (RabbitMQ: a second node would cost seconds per cell). A
user-given URL is a broker the harness cannot kill: such cells are skipped.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from core import interrupts
from core.brokers import broker_kind
from core.brokers.base import BrokerError, BrokerKind
from harness.brokers import Brokers

FAULT_REQUEST = "fault-request.json"
FAULT_DONE = "fault-done.json"


def write_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


class FaultBroker:
    """The broker one crash cell may kill; answers the driver's request once."""

    def __init__(self, server: BrokerKind, dedicated: bool) -> None:
        self.server = server
        self.dedicated = dedicated
        self.answered = False

    @property
    def url(self) -> str:
        return self.server.url

    def serve(self, cell_dir: Path) -> None:
        """Handle a pending request, if any (called in the coordinator's wait loop)."""
        request = cell_dir / FAULT_REQUEST
        if self.answered or not request.exists():
            return
        self.answered = True
        answer: dict[str, Any] = {}
        try:
            action = json.loads(request.read_text()).get("action")
            if action != "broker-kill":
                raise ValueError(f"unknown fault action {action!r}")
            answer["kill_ns"] = time.monotonic_ns()
            self.server.kill9()
            answer["dead_ns"] = time.monotonic_ns()
            self.server.start()
            answer["back_ns"] = time.monotonic_ns()
        except (BrokerError, OSError, ValueError, subprocess.SubprocessError) as exc:
            answer["error"] = (str(exc).splitlines() or [type(exc).__name__])[0]
        write_atomic(cell_dir / FAULT_DONE, answer)

    def wait(self, driver: subprocess.Popen[bytes], cell_dir: Path, timeout_s: float) -> None:
        """Wait for the driver like Popen.wait, serving its fault request meanwhile."""
        deadline = time.monotonic() + timeout_s
        while driver.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(driver.args, timeout_s)
            self.serve(cell_dir)
            time.sleep(0.02)

    def close(self) -> None:
        if self.dedicated:
            with interrupts.shielded():  # a second Ctrl-C must not leave it running
                self.server.stop()
                shutil.rmtree(self.server.data_dir, ignore_errors=True)


def prepare(brokers: Brokers, kind: str, options: dict[str, str], data_dir: Path
            ) -> FaultBroker:
    """The broker a crash cell may kill; BrokerError (the skip reason) if there is none."""
    broker = broker_kind(kind)
    if kind in brokers.user_urls:
        raise BrokerError(f"broker-kill needs a harness-owned {kind} broker; the one given "
                          f"with {broker.flag()} cannot be killed and restarted by the harness")
    if broker.dedicated_for_kill:
        server = broker(data_dir=data_dir, options=dict(options))
        server.start()
        return FaultBroker(server, dedicated=True)
    brokers.url(kind)  # starts the pool's server if needed
    return FaultBroker(brokers.owned[kind], dedicated=False)
