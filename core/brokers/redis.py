"""Redis: redis-server without snapshots, a stdlib RESP probe (AUTH, PING) and INFO memory."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from core.brokers.base import BrokerKind, Persistence
from core.urls import connect, mask


def _command(*words: str) -> bytes:
    """A RESP array of bulk strings."""
    out = [f"*{len(words)}\r\n".encode()]
    for word in words:
        data = word.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _auth(sock: socket.socket, url: str) -> bytes | None:
    """Send AUTH when `url` has a password; the server's reply, or None if none was sent."""
    parts = urlsplit(url)
    if parts.password is None:
        return None
    args = [unquote(parts.password)]
    if parts.username:
        args.insert(0, unquote(parts.username))
    sock.sendall(_command("AUTH", *args))
    return sock.recv(512)


@dataclass(kw_only=True)
class Redis(BrokerKind):
    name: ClassVar[str] = "redis"
    title: ClassVar[str] = "Redis"
    schemes: ClassVar[tuple[str, ...]] = ("redis", "rediss")
    default_port: ClassVar[int] = 6379
    example_url: ClassVar[str] = "redis://127.0.0.1:6379/0"
    binary: ClassVar[str] = "redis-server"
    apt_package: ClassVar[str] = "redis-server"
    compose_service: ClassVar[str] = "redis"
    message_limit: ClassVar[int] = 512 * 1024 * 1024  # proto-max-bulk-len
    # aof-always is not among them: a kill -9 of the server process loses nothing
    # that aof-everysec has already written to the kernel; the two differ only when
    # the machine itself goes down, which this harness does not simulate.
    persistence: ClassVar[dict[str, Persistence]] = {
        "off": Persistence(durable=False, server_options={"appendonly": "no"},
                           loss="Redis without persistence restarts empty"),
        "aof-everysec": Persistence(durable=True, server_options={
            "appendonly": "yes", "appendfsync": "everysec"}),
    }

    @classmethod
    def probe(cls, url: str, timeout_s: float = 3.0) -> str | None:
        """PING after AUTH: a wrong or missing password is told apart from no server."""
        problem = cls.url_problem(url)
        if problem:
            return problem
        try:
            with connect(url, cls.default_port, timeout_s) as sock:
                reply = _auth(sock, url)
                if reply is not None and not reply.startswith(b"+OK"):
                    return f"redis at {mask(url)} refused the credentials: {reply.decode().strip()}"
                sock.sendall(_command("PING"))
                reply = sock.recv(512)
        except OSError as exc:
            return f"cannot reach redis at {mask(url)}: {exc}"
        if reply.startswith(b"+PONG"):
            return None
        text = reply.decode(errors="replace").strip()
        if "NOAUTH" in text:
            return f"redis at {mask(url)} needs a password that was not given"
        return f"redis at {mask(url)} answered {text!r} to PING"

    @classmethod
    def memory(cls, url: str, control: list[str] | None) -> dict[str, Any]:
        info = cls.info(url, "memory")
        return {"bytes": int(info["used_memory"]), "method": "redis INFO used_memory"}

    @classmethod
    def info(cls, url: str, section: str, timeout_s: float = 5.0) -> dict[str, str]:
        """INFO <section> of the Redis at `url` as a dict."""
        with connect(url, cls.default_port, timeout_s) as sock:
            _auth(sock, url)
            sock.sendall(_command("INFO", section))
            data = b""
            while not data.endswith(b"\r\n") or data.count(b"\r\n") < 2:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        text = data.decode(errors="replace")
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> tuple[list[str], dict[str, str]]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [self.find_binary() or self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
               "--dir", str(self.data_dir), "--save", "",
               "--appendonly", self.options.get("appendonly", "no"),
               "--appendfsync", self.options.get("appendfsync", "everysec"),
               "--protected-mode", "yes", "--daemonize", "no", "--maxclients", "10000"]
        return cmd, dict(os.environ)

    def read_version(self) -> str:
        out = subprocess.run([self.find_binary() or self.binary, "--version"],
                             capture_output=True, text=True, check=False).stdout
        found = re.search(r"v=(\S+)", out)
        return found.group(1) if found else out.strip()
