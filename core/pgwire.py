"""Just enough of PostgreSQL's frontend/backend protocol (v3) for the harness: log in
(trust, password, md5, SCRAM-SHA-256) and run simple queries that return text.

Stdlib only: the postgres broker kind probes user-given servers and reads
relation sizes from the coordinator and from every backend's driver, where
no PostgreSQL client library may be assumed. No TLS: a server that demands
it is reported as refusing the connection.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import socket
import struct
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

PROTOCOL_V3 = 196608
_AUTH_OK, _AUTH_CLEARTEXT, _AUTH_MD5 = 0, 3, 5
_AUTH_SASL, _AUTH_SASL_CONTINUE, _AUTH_SASL_FINAL = 10, 11, 12


class PgError(Exception):
    """An ErrorResponse from the server: `code` is its SQLSTATE."""

    def __init__(self, fields: dict[str, str]) -> None:
        self.code = fields.get("C", "")
        super().__init__(fields.get("M", "unknown error"))


class PgProtocolError(Exception):
    """The peer does not speak the protocol as expected (or hung up)."""


def _message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack(">I", len(body) + 4) + body


def _cstring(text: str) -> bytes:
    return text.encode() + b"\0"


def _error_fields(body: bytes) -> dict[str, str]:
    return {chunk[:1].decode(): chunk[1:].decode(errors="replace")
            for chunk in body.split(b"\0") if chunk}


class _Scram:
    """SCRAM-SHA-256 (RFC 5802/7677) without channel binding."""

    def __init__(self, password: str) -> None:
        self.password = password.encode()
        self.nonce = base64.b64encode(secrets.token_bytes(18)).decode()
        self.first_bare = f"n=,r={self.nonce}"
        self.signature = b""

    def first(self) -> bytes:
        return f"n,,{self.first_bare}".encode()

    def final(self, server_first: bytes) -> bytes:
        attrs = dict(item.split("=", 1) for item in server_first.decode().split(","))
        if not attrs["r"].startswith(self.nonce):
            raise PgProtocolError("SCRAM: the server changed the client nonce")
        salted = hashlib.pbkdf2_hmac("sha256", self.password, base64.b64decode(attrs["s"]),
                                     int(attrs["i"]))
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        without_proof = f"c=biws,r={attrs['r']}"
        auth_message = f"{self.first_bare},{server_first.decode()},{without_proof}".encode()
        client_sig = hmac.digest(hashlib.sha256(client_key).digest(), auth_message, "sha256")
        proof = bytes(a ^ b for a, b in zip(client_key, client_sig, strict=True))
        server_key = hmac.digest(salted, b"Server Key", "sha256")
        self.signature = hmac.digest(server_key, auth_message, "sha256")
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def check(self, server_final: bytes) -> None:
        attrs = dict(item.split("=", 1) for item in server_final.decode().split(","))
        if base64.b64decode(attrs.get("v", "")) != self.signature:
            raise PgProtocolError("SCRAM: the server's signature does not match")


class Connection:
    """One logged-in session; `query` runs simple-protocol SQL and returns text rows."""

    def __init__(self, url: str, default_port: int = 5432, timeout_s: float = 5.0) -> None:
        parts = urlsplit(url)
        self.user = unquote(parts.username or "postgres")
        self.password = None if parts.password is None else unquote(parts.password)
        database = unquote(parts.path[1:]) if len(parts.path) > 1 else self.user
        self.parameters: dict[str, str] = {}
        self.sock = socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), timeout=timeout_s)
        try:
            params = _cstring("user") + _cstring(self.user) + _cstring("database") \
                + _cstring(database) + b"\0"
            body = struct.pack(">I", PROTOCOL_V3) + params
            self.sock.sendall(struct.pack(">I", len(body) + 4) + body)
            self._login()
        except BaseException:
            self.sock.close()
            raise

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.sock.sendall(_message(b"X", b""))
        except OSError:
            pass
        self.sock.close()

    def _read_exact(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise PgProtocolError("the server closed the connection")
            data += chunk
        return data

    def _read(self) -> tuple[bytes, bytes]:
        """The next message: (type byte, body); an ErrorResponse raises PgError."""
        kind = self._read_exact(1)
        (size,) = struct.unpack(">I", self._read_exact(4))
        body = self._read_exact(size - 4)
        if kind == b"E":
            raise PgError(_error_fields(body))
        return kind, body

    def _needs_password(self) -> str:
        if self.password is None:
            raise PgError({"C": "28P01", "M": "the server asks for a password and none "
                           "was given"})
        return self.password

    def _login(self) -> None:
        scram: _Scram | None = None
        while True:
            kind, body = self._read()
            if kind == b"R":
                (code,) = struct.unpack(">I", body[:4])
                if code == _AUTH_CLEARTEXT:
                    self.sock.sendall(_message(b"p", _cstring(self._needs_password())))
                elif code == _AUTH_MD5:
                    inner = hashlib.md5((self._needs_password() + self.user).encode()
                                        ).hexdigest()
                    outer = hashlib.md5(inner.encode() + body[4:8]).hexdigest()
                    self.sock.sendall(_message(b"p", _cstring("md5" + outer)))
                elif code == _AUTH_SASL:
                    if b"SCRAM-SHA-256\0" not in body[4:]:
                        raise PgProtocolError("the server offers no SASL mechanism this "
                                              "client knows (SCRAM-SHA-256)")
                    scram = _Scram(self._needs_password())
                    first = scram.first()
                    self.sock.sendall(_message(b"p", _cstring("SCRAM-SHA-256")
                                               + struct.pack(">I", len(first)) + first))
                elif code == _AUTH_SASL_CONTINUE and scram is not None:
                    self.sock.sendall(_message(b"p", scram.final(body[4:])))
                elif code == _AUTH_SASL_FINAL and scram is not None:
                    scram.check(body[4:])
                elif code != _AUTH_OK:
                    raise PgProtocolError(f"unsupported authentication request {code}")
            elif kind == b"S":
                name, value = body.split(b"\0")[:2]
                self.parameters[name.decode()] = value.decode()
            elif kind == b"Z":
                return

    def query(self, sql: str) -> list[tuple[str | None, ...]]:
        """Rows of the last statement of `sql`, every value as text (None for NULL)."""
        self.sock.sendall(_message(b"Q", _cstring(sql)))
        rows: list[tuple[str | None, ...]] = []
        failure: PgError | None = None
        while True:
            try:
                kind, body = self._read()
            except PgError as exc:  # the server still sends ReadyForQuery after it
                failure = exc
                continue
            if kind == b"T":
                rows = []
            elif kind == b"D":
                rows.append(tuple(_values(body)))
            elif kind == b"Z":
                if failure is not None:
                    raise failure
                return rows


def _values(body: bytes) -> Iterator[str | None]:
    """The column values of a DataRow message."""
    (count,) = struct.unpack(">H", body[:2])
    offset = 2
    for _ in range(count):
        (size,) = struct.unpack(">i", body[offset:offset + 4])
        offset += 4
        if size < 0:
            yield None
            continue
        yield body[offset:offset + size].decode()
        offset += size
