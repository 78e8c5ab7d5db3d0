"""Redis: redis-server without snapshots, a stdlib RESP probe (AUTH, PING), INFO memory and
MEMORY USAGE of a queue's keys."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from dataclasses import dataclass
from typing import Any, BinaryIO, ClassVar
from urllib.parse import unquote, urlsplit

from core.brokers.base import BrokerKind, Persistence
from core.urls import connect, mask

SCAN_COUNT = 1000  # keys per SCAN step, and MEMORY USAGE commands per pipelined round


def _command(*words: str | bytes) -> bytes:
    """A RESP array of bulk strings."""
    out = [f"*{len(words)}\r\n".encode()]
    for word in words:
        data = word.encode() if isinstance(word, str) else word
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _auth_words(url: str) -> list[str] | None:
    """The AUTH command `url` calls for ([user,] password), or None without a password."""
    parts = urlsplit(url)
    if parts.password is None:
        return None
    return ["AUTH", *([unquote(parts.username)] if parts.username else []),
            unquote(parts.password)]


def _auth(sock: socket.socket, url: str) -> bytes | None:
    """Send AUTH when `url` has a password; the server's reply, or None if none was sent."""
    words = _auth_words(url)
    if words is None:
        return None
    sock.sendall(_command(*words))
    return sock.recv(512)


def _two_lines(sock: socket.socket) -> bytes:
    """What the server sends until two replies' lines have come (or it stops talking)."""
    reply = b""
    while reply.count(b"\r\n") < 2 and (chunk := sock.recv(512)):
        reply += chunk
    return reply


def _first_line(reply: bytes) -> str:
    return reply.decode(errors="replace").strip().splitlines()[0] if reply.strip() else ""


def _not_redis(url: str, reply: bytes) -> str:
    """One line: something that is not Redis answered at `url` (an HTTP server...)."""
    return f"no Redis server at {mask(url)}: it answered {_first_line(reply)[:60]!r}"


class RedisReplyError(RuntimeError):
    """An error reply (-ERR ...) from the server."""


def _reply(stream: BinaryIO) -> Any:
    """One RESP2 reply: str (status), int, bytes or None (bulk), list (array)."""
    line = stream.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("redis closed the connection mid-reply")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RedisReplyError(rest.decode(errors="replace"))
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        return None if size < 0 else stream.read(size + 2)[:-2]
    if kind == b"*":
        size = int(rest)
        return None if size < 0 else [_reply(stream) for _ in range(size)]
    raise ConnectionError(f"not a RESP reply: {line[:40]!r}")


class RedisSession:
    """One connection to the Redis at a URL (AUTH sent), for a few commands."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self.sock = connect(url, Redis.default_port, timeout_s)
        self.stream = self.sock.makefile("rb")
        try:
            words = _auth_words(url)
            if words is not None:
                self.call(*words)
            database = urlsplit(url).path.lstrip("/")
            if database.isdigit() and database != "0":
                self.call("SELECT", database)
        except BaseException:  # a refused password or database: nothing left open
            self.__exit__()
            raise

    def __enter__(self) -> RedisSession:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stream.close()
        self.sock.close()

    def pipeline(self, commands: list[tuple[str | bytes, ...]]) -> list[Any]:
        """Send every command, then read every reply."""
        self.sock.sendall(b"".join(_command(*words) for words in commands))
        return [_reply(self.stream) for _ in commands]

    def call(self, *words: str | bytes) -> Any:
        return self.pipeline([words])[0]

    def keys_containing(self, text: str) -> list[bytes]:
        """Every key of the database whose name contains `text` (SCAN, filtered here
        rather than by a MATCH glob, so no character of `text` acts as a wildcard)."""
        needle, cursor, found = text.encode(), b"0", []
        while True:
            cursor, keys = self.call("SCAN", cursor, "COUNT", str(SCAN_COUNT))
            found += [key for key in keys if needle in key]
            if cursor == b"0":
                return found

    def memory_usage(self, keys: list[bytes]) -> int:
        """MEMORY USAGE of `keys` summed; SAMPLES 0 walks every element of a list, set,
        hash or sorted set (exact sizes, not an estimate from 5 samples)."""
        total = 0
        for start in range(0, len(keys), SCAN_COUNT):
            chunk = keys[start:start + SCAN_COUNT]
            sizes = self.pipeline([("MEMORY", "USAGE", key, "SAMPLES", "0") for key in chunk])
            total += sum(size or 0 for size in sizes)  # None: the key went away meanwhile
        return total


def _info_fields(text: bytes) -> dict[str, str]:
    return dict(line.split(":", 1) for line in text.decode(errors="replace").splitlines()
                if ":" in line)


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
    default_persistence: ClassVar[str] = "off"
    reliable_persistence: ClassVar[str] = "aof-everysec"  # redis.io's advice for durability

    @classmethod
    def url_problem(cls, url: str) -> str | None:
        """Besides the shape: the database is a number, and no query parameters, which
        each library (redis-py, kombu, arq...) reads its own way or refuses."""
        problem = super().url_problem(url)
        if problem:
            return problem
        parts = urlsplit(url)
        if parts.scheme == "rediss":
            return (f"TLS (rediss://) is not supported: each library needs TLS settings of "
                    f"its own (a CA, ssl_cert_reqs...) and the harness passes none; use a "
                    f"redis:// URL: {mask(url)}")
        if not re.fullmatch(r"/?\d*", parts.path):
            return f"the database of a redis URL is a number (/0): {mask(url)}"
        if parts.query:
            return f"query parameters are not supported in a redis URL: {mask(url)}"
        return None

    @classmethod
    def probe(cls, url: str, timeout_s: float = 3.0) -> str | None:
        """PING after AUTH and SELECT: a wrong or missing password, a database the
        server does not have, and a server that is not Redis are told apart from none."""
        problem = cls.url_problem(url)
        if problem:
            return problem
        database = urlsplit(url).path.lstrip("/") or "0"
        try:
            with connect(url, cls.default_port, timeout_s) as sock:
                reply = _auth(sock, url)
                if reply is not None and not reply.startswith(b"+OK"):
                    return (f"redis at {mask(url)} refused the credentials: "
                            f"{_first_line(reply)}" if reply[:1] == b"-" else
                            _not_redis(url, reply))
                sock.sendall(_command("SELECT", database) + _command("PING"))
                reply = _two_lines(sock)
        except OSError as exc:
            return f"cannot reach redis at {mask(url)}: {exc}"
        if reply.startswith(b"+OK\r\n+PONG"):
            return None
        if reply[:1] not in (b"+", b"-"):
            return _not_redis(url, reply)
        text = _first_line(reply)
        if "NOAUTH" in text:
            return f"redis at {mask(url)} needs a password that was not given"
        if reply.startswith(b"-"):
            return f"redis at {mask(url)} refused database {database}: {text}"
        return f"redis at {mask(url)} answered {text!r} to PING"

    @classmethod
    def memory(cls, url: str, control: list[str] | None, queue: str | None = None
               ) -> dict[str, Any]:
        """used_memory; with `queue`, also MEMORY USAGE of the keys named after it."""
        with RedisSession(url, timeout_s=30.0) as session:
            info = _info_fields(session.call("INFO", "memory"))
            reading: dict[str, Any] = {"bytes": int(info["used_memory"]),
                                       "method": "redis INFO used_memory"}
            if queue:
                keys = session.keys_containing(queue)
                reading.update(queue_bytes=session.memory_usage(keys), queue_keys=len(keys),
                               queue_method="redis MEMORY USAGE SAMPLES 0 of the keys whose "
                                            "name holds the queue's")
        return reading

    @classmethod
    def server_version(cls, url: str, timeout_s: float = 3.0) -> str | None:
        """redis_version from INFO server."""
        try:
            return cls.info(url, "server", timeout_s).get("redis_version")
        except (OSError, RedisReplyError):
            return None

    @classmethod
    def info(cls, url: str, section: str, timeout_s: float = 5.0) -> dict[str, str]:
        """INFO <section> of the Redis at `url` as a dict."""
        with RedisSession(url, timeout_s) as session:
            return _info_fields(session.call("INFO", section))

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
