"""What a broker kind is: one class that knows everything the harness does with that broker.

A subclass declares the kind (class attributes), checks and probes user-given
URLs, reads the broker's memory, and, as an instance, is one harness-owned
server: a free loopback port, a private data dir, its own process group,
stopped with everything it spawned. kill -9 and `start` again bring it back
on the same port and data (the crash scenario's broker kill).

Stdlib only: the memory readers and probes run inside every backend's
environment (the driver), so nothing here may import a backend library.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from core import interrupts, procs
from core.urls import mask, shape_problem


class BrokerError(RuntimeError):
    """A broker could not be started or reached; the message says why and how to fix it."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Persistence:
    """A durability setting the crash scenario kills the broker under."""

    durable: bool  # queued jobs are meant to survive a kill -9 of the broker
    server_options: Mapping[str, str] = field(default_factory=dict)  # for its dedicated server
    loss: str | None = None  # why a kill -9 loses queued jobs under it (a cell's explanation)


@dataclass(kw_only=True)
class BrokerKind(ABC):
    """A kind of broker; an instance is one server the harness started and must stop."""

    # -- the kind, declared by every subclass --------------------------------------------
    name: ClassVar[str]  # what backends declare (BackendInfo.broker); the flag is --<name>-url
    title: ClassVar[str]  # the product, for messages: "Redis"
    schemes: ClassVar[tuple[str, ...]]  # URL schemes it accepts, the usual one first
    default_port: ClassVar[int]
    example_url: ClassVar[str]  # what the docker compose service listens on
    binary: ClassVar[str]  # the server executable the harness starts
    apt_package: ClassVar[str]  # also the name of the system service it may start
    compose_service: ClassVar[str]  # in docker-compose.yml
    message_limit: ClassVar[int]  # the largest message it accepts, in bytes
    persistence: ClassVar[Mapping[str, Persistence]]  # crash-recovery's broker-kill settings
    # Where durability is the client's choice (queue and message flags), the setting of
    # a backend that offers no switch; None: a server setting, every backend runs each.
    client_default_persistence: ClassVar[str | None] = None
    # The persistence every cell of a profile runs with, whatever the backend and
    # scenario: the reliable profile's is the durable setting, the others' the default.
    default_persistence: ClassVar[str]
    reliable_persistence: ClassVar[str]
    # A broker-kill cell gets a server of its own, started with the cell's persistence
    # options; False: the pool's server is killed (when a second one costs seconds).
    dedicated_for_kill: ClassVar[bool] = True

    # -- the server -----------------------------------------------------------------------
    data_dir: Path
    options: Mapping[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    guard: subprocess.Popen[bytes] | None = None  # core/orphan_guard.py, where needed
    version: str = "unknown"

    @classmethod
    def persistence_for(cls, profile: str) -> str:
        """The name (in `persistence`) of the setting cells of `profile` run with."""
        return cls.reliable_persistence if profile == "reliable" else cls.default_persistence

    # -- user-given URLs --------------------------------------------------------------------
    @classmethod
    def flag(cls) -> str:
        return f"--{cls.name}-url"

    @classmethod
    def url_problem(cls, url: str) -> str | None:
        """Why `url` cannot be a URL of this kind (one line, no password), or None."""
        return shape_problem(url, cls.schemes)

    @classmethod
    @abstractmethod
    def probe(cls, url: str, timeout_s: float = 3.0) -> str | None:
        """None when a broker of this kind answers at `url` (credentials accepted), else why."""

    @classmethod
    @abstractmethod
    def server_version(cls, url: str, timeout_s: float = 3.0) -> str | None:
        """The version the server at `url` reports about itself (a user-given server:
        a harness-owned one has read_version), or None when it cannot be read."""

    @classmethod
    @abstractmethod
    def memory(cls, url: str, control: list[str] | None, queue: str | None = None
               ) -> dict[str, Any]:
        """{"bytes": int | None, "method": str}: the broker's memory now, from the driver.

        `control` is the command prefix of a harness-owned server (see `control`).
        With `queue`, a kind that can tell the queue's own share adds "queue_bytes"
        (and "queue_method"; "disk_bytes" for what the queue keeps on disk) for the
        queues or keys whose name holds `queue`; one whose total is the queue's
        (a database's tables) adds nothing."""

    # -- installation ---------------------------------------------------------------------
    @classmethod
    def find_binary(cls) -> str | None:
        return shutil.which(cls.binary) or next(
            (str(p) for p in (Path("/usr/sbin") / cls.binary, Path("/usr/bin") / cls.binary)
             if p.exists()), None)

    @classmethod
    def install_hint(cls) -> str:
        return (f"install it with `apt-get install -y {cls.apt_package}` (as root), or start one "
                f"with `docker compose up -d {cls.compose_service}` and pass {cls.flag()} "
                f"{cls.example_url}")

    @classmethod
    def missing_binary(cls) -> str:
        return f"{cls.binary} not found: {cls.install_hint()}"

    @classmethod
    def problem(cls, url: str | None) -> str | None:
        """Why no broker of this kind can be had: `url` does not answer, or none can start."""
        if url:
            return cls.probe(url, timeout_s=3.0)
        return None if cls.find_binary() else cls.missing_binary()

    @classmethod
    def doctor_lines(cls, url: str | None) -> list[tuple[str, str, bool]]:
        """`doctor`'s lines for this kind: (what, finding, ok)."""
        path = cls.find_binary()
        lines = [(cls.binary, path or f"MISSING: {cls.install_hint()}", path is not None)]
        if url:
            reason = cls.probe(url, timeout_s=3.0)
            lines.append((cls.flag(), reason or f"{mask(url)} reachable", reason is None))
        return lines

    # -- a harness-owned server -----------------------------------------------------------
    @property
    @abstractmethod
    def url(self) -> str:
        """The URL of this server, credentials included."""

    @abstractmethod
    def command(self) -> tuple[list[str], dict[str, str]]:
        """The command line and environment that start this server in `data_dir`."""

    def read_version(self) -> str:
        return "unknown"

    def control(self) -> list[str] | None:
        """A command prefix that administers this server, for `memory`; None if it needs none."""
        return None

    def run_as(self) -> str | None:
        """The user the server runs as; None: the harness's own."""
        return None

    def orphan_cleanup(self) -> list[str] | None:
        """For a server whose processes escape the harness's death signal (forked after a
        change of user): what to run, besides stopping its process group, when the
        harness dies without stopping it (core/orphan_guard.py); None: nothing escapes."""
        return None

    def start(self, timeout_s: float = 60.0) -> None:
        """Start the server (again: same port, same data) and wait until it answers."""
        cmd, env = self.command()
        self.proc = procs.spawn(cmd, env=env, log_path=self.data_dir / "server.log",
                                cwd=self.data_dir, user=self.run_as())
        cleanup = self.orphan_cleanup()
        if cleanup is not None:
            self.guard = procs.orphan_guard(self.proc.pid, cleanup)
        deadline = time.monotonic() + timeout_s
        try:
            while (reason := self.probe(self.url, timeout_s=1.0)) is not None:
                if self.proc.poll() is not None:
                    raise BrokerError(f"{self.binary} exited with code {self.proc.returncode}"
                                      f":\n{procs.tail(self.data_dir / 'server.log', 10)}")
                if time.monotonic() > deadline:
                    raise BrokerError(f"{self.binary} not answering after {timeout_s:.0f}s: "
                                      f"{reason}")
                time.sleep(0.05)
                interrupts.check()
            self.version = self.read_version()
        except BaseException:  # failed, or interrupted: stop what it started, all of it
            with interrupts.shielded():  # (RabbitMQ's epmd daemon too), signals or not
                self.stop()
            raise

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None:
            procs.stop_tree(self.proc, grace_s=10.0, whole_group=True)
            self.proc = None
        self._release_guard()

    def _release_guard(self) -> None:
        """End the orphan guard of a server the harness itself stopped: its clean-up is
        for a harness that died, and waiting for its next poll would only add time (to a
        broker-kill's restart, and so to its recovery figures)."""
        if self.guard is not None:
            self.guard.kill()
            self.guard.wait()
            self.guard = None

    def kill9(self) -> None:
        """SIGKILL the server (crash scenario); `start` brings it back on the same data."""
        if self.proc is not None:
            procs.signal_tree(self.proc.pid, 9)
            self.proc.wait(10)
            self.proc = None
        self._release_guard()
