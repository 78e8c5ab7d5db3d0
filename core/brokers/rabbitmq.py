"""RabbitMQ (AMQP 0-9-1): rabbitmq-server as its own user with a private epmd and fresh
credentials, a stdlib handshake probe up to Connection.Open-Ok, memory read on the node
(rabbitmq_memory.py)."""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import socket
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from core.brokers.base import BrokerKind, Persistence, free_port
from core.brokers.rabbitmq_memory import parse, read_node
from core.urls import connect, mask


class _ClosedByBroker(Exception):
    """The broker hung up mid-handshake: how RabbitMQ answers bad credentials."""


def _frame(method: tuple[int, int], args: bytes) -> bytes:
    payload = struct.pack(">HH", *method) + args
    return struct.pack(">BHI", 1, 0, len(payload)) + payload + b"\xce"


def _shortstr(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">B", len(data)) + data


def _read_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise _ClosedByBroker
        data += chunk
    return data


def _read_method(sock: socket.socket) -> tuple[tuple[int, int], bytes]:
    """The next method frame on channel 0: ((class, method), arguments)."""
    _kind, _channel, size = struct.unpack(">BHI", _read_exact(sock, 7))
    body = _read_exact(sock, size + 1)[:-1]
    return struct.unpack(">HH", body[:4]), body[4:]


# Field-table value types of AMQP 0-9-1 (RabbitMQ's set) by the bytes each takes;
# None: a 4-byte length, then that many bytes (a string, a nested table, an array).
FIELD_SIZES: dict[bytes, int | None] = {
    b"t": 1, b"b": 1, b"B": 1, b"s": 2, b"u": 2, b"I": 4, b"i": 4, b"f": 4, b"l": 8,
    b"L": 8, b"d": 8, b"T": 8, b"D": 5, b"V": 0, b"S": None, b"x": None, b"F": None,
    b"A": None}


def _table_strings(table: bytes) -> dict[str, str]:
    """The string fields of an AMQP field table (its 4-byte length already taken off)."""
    found: dict[str, str] = {}
    at = 0
    while at < len(table):
        size = table[at]
        key = table[at + 1:at + 1 + size].decode(errors="replace")
        kind, at = table[at + 1 + size:at + 2 + size], at + 2 + size
        if kind not in FIELD_SIZES:
            break  # a type this parser does not know: stop rather than misread
        width = FIELD_SIZES[kind]
        if width is None:
            (width,) = struct.unpack(">I", table[at:at + 4])
            at += 4
            if kind == b"S":
                found[key] = table[at:at + width].decode(errors="replace")
        at += width
    return found


def _start_properties(sock: socket.socket) -> dict[str, str] | None:
    """The server-properties strings of Connection.Start (product, version...), or None
    when no AMQP 0-9-1 broker answers."""
    sock.sendall(b"AMQP\x00\x00\x09\x01")
    if sock.recv(1, socket.MSG_PEEK) != b"\x01":
        return None
    method, args = _read_method(sock)
    if method != (10, 10):
        return None
    (size,) = struct.unpack(">I", args[2:6])  # after version-major and version-minor
    return _table_strings(args[6:6 + size])


def _handshake(sock: socket.socket, url: str) -> str | None:
    """Log in (PLAIN) and open the vhost of `url`; None when the broker accepts both."""
    parts = urlsplit(url)
    user = unquote(parts.username or "guest")
    password = unquote(parts.password or "guest")
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    sock.sendall(b"AMQP\x00\x00\x09\x01")
    if sock.recv(1, socket.MSG_PEEK) != b"\x01":
        return f"no AMQP 0-9-1 broker at {mask(url)}"
    _read_method(sock)  # Connection.Start
    response = f"\0{user}\0{password}".encode()
    sock.sendall(_frame((10, 11), struct.pack(">I", 0) + _shortstr("PLAIN")
                        + struct.pack(">I", len(response)) + response + _shortstr("en_US")))
    method, args = _read_method(sock)
    if method != (10, 30):  # Connection.Tune
        return f"amqp broker at {mask(url)} refused the credentials"
    sock.sendall(_frame((10, 31), args[:8]))  # Tune-Ok: echo channel/frame max
    sock.sendall(_frame((10, 40), _shortstr(vhost) + _shortstr("") + b"\x00"))
    method, args = _read_method(sock)
    if method != (10, 41):  # Connection.Open-Ok
        return f"amqp broker at {mask(url)} refused vhost {vhost!r}"
    return None


def _as_rabbitmq_user() -> list[str]:
    """The prefix that drops root to the rabbitmq user (rabbitmq-server refuses root)."""
    return ["runuser", "-u", "rabbitmq", "--"] if os.geteuid() == 0 else []


@dataclass(kw_only=True)
class RabbitMQ(BrokerKind):
    name: ClassVar[str] = "amqp"
    title: ClassVar[str] = "RabbitMQ"
    schemes: ClassVar[tuple[str, ...]] = ("amqp",)
    default_port: ClassVar[int] = 5672
    example_url: ClassVar[str] = "amqp://guest:guest@127.0.0.1:5672/"
    binary: ClassVar[str] = "rabbitmq-server"
    apt_package: ClassVar[str] = "rabbitmq-server"
    compose_service: ClassVar[str] = "rabbitmq"
    message_limit: ClassVar[int] = 128 * 1024 * 1024  # 3.x max_message_size
    # Durability is declared by the client (durable queue, persistent messages). Celery
    # and Dramatiq do so by default and our adapters offer no switch: they run durable.
    persistence: ClassVar[dict[str, Persistence]] = {
        "transient": Persistence(durable=False, loss="a transient queue and its messages do "
                                 "not survive a RabbitMQ restart"),
        # RabbitMQ sometimes restarts from a kill -9 without the durable queue
        # (docs/methodology.md, crash recovery: 6 of 80 kills in one study)
        "durable": Persistence(durable=True, loss="the restarted RabbitMQ did not recover "
                               "the durable queue, as it sometimes does after a kill -9 (its "
                               "log: 'Recovering 0 queues'; amqp-raw's consumer log says the "
                               "queue did not survive)"),
    }
    client_default_persistence: ClassVar[str | None] = "durable"
    # Every RabbitMQ backend declares durable queues and persistent messages in both
    # profiles (amqp-raw as the libraries it is the ceiling of); one server serves both.
    default_persistence: ClassVar[str] = "durable"
    reliable_persistence: ClassVar[str] = "durable"
    dedicated_for_kill: ClassVar[bool] = False  # a second node costs seconds per cell

    user: str = field(default_factory=lambda: f"qb_{secrets.token_hex(4)}")
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    dist_port: int = field(default_factory=free_port)
    epmd_port: int = field(default_factory=free_port)

    @classmethod
    def probe(cls, url: str, timeout_s: float = 3.0) -> str | None:
        """The handshake up to Connection.Open-Ok, so a wrong or missing password is
        caught before any backend starts."""
        problem = cls.url_problem(url)
        if problem:
            return problem
        try:
            sock = connect(url, cls.default_port, timeout_s)
        except OSError as exc:
            return f"cannot reach amqp broker at {mask(url)}: {exc}"
        try:
            with sock:
                return _handshake(sock, url)
        except (_ClosedByBroker, ConnectionResetError):
            return f"amqp broker at {mask(url)} refused the credentials (connection closed)"
        except TimeoutError:
            return (f"amqp broker at {mask(url)} did not answer the login within "
                    f"{timeout_s:.0f}s (wrong or missing credentials?)")
        except OSError as exc:
            return f"amqp broker at {mask(url)} failed the handshake: {exc}"

    @classmethod
    def server_version(cls, url: str, timeout_s: float = 3.0) -> str | None:
        """The version in Connection.Start's server properties (no login needed)."""
        try:
            with connect(url, cls.default_port, timeout_s) as sock:
                properties = _start_properties(sock)
        except (OSError, struct.error, ValueError, _ClosedByBroker):
            return None
        return (properties or {}).get("version")

    @classmethod
    def memory(cls, url: str, control: list[str] | None, queue: str | None = None
               ) -> dict[str, Any]:
        """The Erlang VM's total after a garbage collection of every process; with
        `queue`, also what the queues named after it hold: their processes' memory plus
        the message bytes they keep in RAM, and the bytes of persistent messages
        (written to the message store on disk). One call on the node
        (core/brokers/rabbitmq_memory.py)."""
        if not control:
            return {"bytes": None, "method": "not measurable: a user-given RabbitMQ gives the "
                    "harness no access to its node"}
        result, client = read_node(control)
        if result is None:
            return {"bytes": None, "method": client}
        reading = {"method": f"{client}: erlang:memory(total) after a garbage collection of "
                             f"every process", **parse(result, queue)}
        if why := reading.pop("unreadable", None):
            key = "method" if reading["bytes"] is None else "queue_method"
            reading[key] = f"{client}: {why}"
        elif "queue_bytes" in reading:
            reading.update(
                queue_method=f"{client}: memory + message_bytes_ram of the queues whose "
                             f"name holds the queue's (rabbit_amqqueue:info_all, as "
                             f"rabbitmqctl list_queues)",
                disk_method=f"{client}: message_bytes_persistent of those queues")
        return reading

    @property
    def url(self) -> str:
        return f"amqp://{self.user}:{self.password}@127.0.0.1:{self.port}/%2F"

    def command(self) -> tuple[list[str], dict[str, str]]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.data_dir / "rabbitmq.conf"
        conf.write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
            f"default_user = {self.user}\ndefault_pass = {self.password}\n"
            "loopback_users = none\n"
            "vm_memory_high_watermark.relative = 0.6\ndisk_free_limit.absolute = 50MB\n"
        )
        conf.chmod(0o600)
        (self.data_dir / "enabled_plugins").write_text("[].\n")
        prefix = self._run_as()
        env = self._node_env()
        binary = self.find_binary() or self.binary
        return [*prefix, "env", *(f"{k}={v}" for k, v in env.items()), binary], env

    def _run_as(self) -> list[str]:
        """As root, hand the data dir to the rabbitmq user and run as it (if it exists)."""
        if os.geteuid() != 0:
            return []
        try:
            pwd.getpwnam("rabbitmq")
        except KeyError:
            return []
        shutil.chown(self.data_dir, "rabbitmq")
        for path in self.data_dir.rglob("*"):
            shutil.chown(path, "rabbitmq")
        return _as_rabbitmq_user()

    def _node_env(self) -> dict[str, str]:
        """The environment that names this node and its private files."""
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "RABBITMQ_NODENAME": f"qb{self.port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.data_dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.data_dir / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.data_dir / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.data_dir / "rabbitmq.conf"),
        }

    def control(self) -> list[str]:
        """rabbitmqctl aimed at this node (node and CLI share the user's Erlang cookie)."""
        ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
        env = self._node_env()
        return [*_as_rabbitmq_user(), "env", *(f"{k}={v}" for k, v in env.items()), ctl,
                "-n", env["RABBITMQ_NODENAME"], "-q"]

    def read_version(self) -> str:
        for log in sorted((self.data_dir / "log").glob("*.log")):
            found = re.search(r"RabbitMQ (\d+\.\d+\.\d+)", log.read_text(errors="replace"))
            if found:
                return found.group(1)
        return "unknown"

    def stop(self) -> None:
        super().stop()
        self._stop_epmd()

    def orphan_cleanup(self) -> list[str] | None:
        """runuser forks the server after it drops root, so beam and epmd do not die
        with the harness: the guard stops the group, and then the private epmd."""
        return self._epmd_kill() or []

    def _epmd_kill(self) -> list[str] | None:
        """The command that stops this node's private epmd daemon (it detaches from the
        tree), by its port; None without an epmd binary."""
        epmd = shutil.which("epmd") or next(Path("/usr/lib/erlang").glob("erts-*/bin/epmd"), None)
        if epmd is None:
            return None
        return ["env", f"ERL_EPMD_PORT={self.epmd_port}", str(epmd), "-kill"]

    def _stop_epmd(self) -> None:
        command = self._epmd_kill()
        if command is not None:
            subprocess.run(command, capture_output=True, timeout=10, check=False)
