"""Broker URLs: masking passwords and quick stdlib reachability probes.

The probes speak just enough of each protocol to tell "a broker answers
here" from "nothing listens" within a bounded time, without importing any
backend library into the coordinator.
"""

from __future__ import annotations

import socket
import struct
from urllib.parse import unquote, urlsplit, urlunsplit

DEFAULT_PORTS = {"redis": 6379, "amqp": 5672}


def mask(url: str) -> str:
    """The URL with its password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def _connect(url: str, kind: str, timeout_s: float) -> socket.socket:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or DEFAULT_PORTS[kind]
    return socket.create_connection((host, port), timeout=timeout_s)


def _resp(*words: str) -> bytes:
    out = [f"*{len(words)}\r\n".encode()]
    for word in words:
        data = word.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def probe_redis(url: str, timeout_s: float = 3.0) -> str | None:
    """None when a Redis server answers PING at `url` (after AUTH), else the reason."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        return f"not a redis:// URL: {mask(url)}"
    try:
        with _connect(url, "redis", timeout_s) as sock:
            if parts.password is not None:
                args = [unquote(parts.password)]
                if parts.username:
                    args.insert(0, unquote(parts.username))
                sock.sendall(_resp("AUTH", *args))
                reply = sock.recv(512)
                if not reply.startswith(b"+OK"):
                    return f"redis at {mask(url)} refused the credentials: {reply.decode().strip()}"
            sock.sendall(_resp("PING"))
            reply = sock.recv(512)
    except OSError as exc:
        return f"cannot reach redis at {mask(url)}: {exc}"
    if reply.startswith(b"+PONG"):
        return None
    text = reply.decode(errors="replace").strip()
    if "NOAUTH" in text:
        return f"redis at {mask(url)} needs a password that was not given"
    return f"redis at {mask(url)} answered {text!r} to PING"


def redis_info(url: str, section: str = "memory", timeout_s: float = 5.0) -> dict[str, str]:
    """INFO <section> of the Redis at `url` as a dict (stdlib RESP client)."""
    parts = urlsplit(url)
    with _connect(url, "redis", timeout_s) as sock:
        if parts.password is not None:
            sock.sendall(_resp("AUTH", unquote(parts.password)))
            sock.recv(512)
        sock.sendall(_resp("INFO", section))
        data = b""
        while not data.endswith(b"\r\n") or data.count(b"\r\n") < 2:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    text = data.decode(errors="replace")
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def _amqp_frame(method: tuple[int, int], args: bytes) -> bytes:
    payload = struct.pack(">HH", *method) + args
    return struct.pack(">BHI", 1, 0, len(payload)) + payload + b"\xce"


def _shortstr(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">B", len(data)) + data


def _read_method(sock: socket.socket) -> tuple[tuple[int, int], bytes]:
    """The next method frame on channel 0: ((class, method), arguments)."""
    header = _read_exact(sock, 7)
    _kind, _channel, size = struct.unpack(">BHI", header)
    body = _read_exact(sock, size + 1)[:-1]
    return struct.unpack(">HH", body[:4]), body[4:]


class _ClosedByBroker(Exception):
    """The broker hung up mid-handshake: how RabbitMQ answers bad credentials."""


def _read_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise _ClosedByBroker
        data += chunk
    return data


def probe_amqp(url: str, timeout_s: float = 3.0) -> str | None:
    """None when an AMQP 0-9-1 broker accepts our credentials and vhost, else the reason.

    Speaks the handshake up to Connection.Open-Ok (PLAIN authentication),
    so a wrong or missing password is caught before any backend starts.
    """
    parts = urlsplit(url)
    if parts.scheme != "amqp":
        return f"not an amqp:// URL: {mask(url)}"
    user = unquote(parts.username or "guest")
    password = unquote(parts.password or "guest")
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    try:
        sock = _connect(url, "amqp", timeout_s)
    except OSError as exc:
        return f"cannot reach amqp broker at {mask(url)}: {exc}"
    try:
        with sock:
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            if sock.recv(1, socket.MSG_PEEK) != b"\x01":
                return f"no AMQP 0-9-1 broker at {mask(url)}"
            _read_method(sock)  # Connection.Start
            response = f"\0{user}\0{password}".encode()
            sock.sendall(_amqp_frame((10, 11), struct.pack(">I", 0) + _shortstr("PLAIN")
                                     + struct.pack(">I", len(response)) + response
                                     + _shortstr("en_US")))
            method, args = _read_method(sock)
            if method != (10, 30):  # Connection.Tune
                return f"amqp broker at {mask(url)} refused the credentials"
            sock.sendall(_amqp_frame((10, 31), args[:8]))  # Tune-Ok: echo channel/frame max
            sock.sendall(_amqp_frame((10, 40), _shortstr(vhost) + _shortstr("") + b"\x00"))
            method, args = _read_method(sock)
            if method != (10, 41):  # Connection.Open-Ok
                return f"amqp broker at {mask(url)} refused vhost {vhost!r}"
    except (_ClosedByBroker, ConnectionResetError):
        return f"amqp broker at {mask(url)} refused the credentials (connection closed)"
    except TimeoutError:
        return (f"amqp broker at {mask(url)} did not answer the login within {timeout_s:.0f}s "
                "(wrong or missing credentials?)")
    except OSError as exc:
        return f"amqp broker at {mask(url)} failed the handshake: {exc}"
    return None


PROBES = {"redis": probe_redis, "amqp": probe_amqp}
