"""Broker URLs: masking passwords, checking their shape, and the socket the probes use.

The protocol probes themselves live with their broker kind (core/brokers/);
they speak just enough of each protocol to tell "a broker answers here"
from "nothing listens" within a bounded time, without importing any
backend library into the coordinator.
"""

from __future__ import annotations

import re
import socket
from urllib.parse import urlsplit

# the password of the user info (//user:PASSWORD@host), and one given as a query
# parameter (?password=...), as libpq and some clients accept
_USERINFO_PASSWORD = re.compile(r"(//[^/@?#]*?:)[^/?#]*@")  # to the last @: p@ss too
_QUERY_PASSWORD = re.compile(r"((?:^|[&;])(?:password|passwd|pass)=)[^&;#]*", re.IGNORECASE)


def mask(url: str) -> str:
    """The URL with its passwords replaced by ***; by pattern, not by parsing, so a URL
    no parser takes (an unclosed IPv6 bracket) is masked all the same."""
    masked = _USERINFO_PASSWORD.sub(r"\1***@", url, count=1)
    head, mark, query = masked.partition("?")
    return head + mark + _QUERY_PASSWORD.sub(r"\1***", query) if mark else masked


def shape_problem(url: str, schemes: tuple[str, ...]) -> str | None:
    """One line saying why `url` is not a URL of one of `schemes` with a host, or None."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        return f"malformed URL ({exc}): {mask(url)}"
    if parts.scheme not in schemes:
        article = "an" if schemes[0][0] in "aeiou" else "a"
        return f"not {article} {schemes[0]}:// URL: {mask(url)}"
    try:
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number in range
    except ValueError:
        return f"bad port in {mask(url)}"
    if not parts.hostname:
        return f"no host in {mask(url)}"
    return None


def connect(url: str, default_port: int, timeout_s: float) -> socket.socket:
    """A TCP connection to the host and port of `url`."""
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port),
                                    timeout=timeout_s)
