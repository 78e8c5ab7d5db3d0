"""The run's broker pool: one URL per broker kind, user-given (probed) or harness-owned.

A harness-owned server (core/brokers/<kind>.py) is started on first use and
stopped, with everything it spawned, by `stop_all` on every exit path of
the run (end, Ctrl-C, error).
"""

from __future__ import annotations

from pathlib import Path

from core.brokers import broker_kind
from core.brokers.base import BrokerError, BrokerKind
from core.urls import mask


class Brokers:
    """Provides a URL per broker kind: user-given (probed) or harness-owned (started)."""

    def __init__(self, base_dir: Path, urls: dict[str, str | None]) -> None:
        self.base_dir = base_dir
        self.user_urls = {k: v for k, v in urls.items() if v}
        self.owned: dict[str, BrokerKind] = {}
        self.unavailable: dict[str, str] = {}
        self.versions: dict[str, str] = {}

    def url(self, kind: str) -> str:
        """The URL for `kind`, starting a server if needed; raises BrokerError with the fix."""
        if kind in self.unavailable:
            raise BrokerError(self.unavailable[kind])
        broker = broker_kind(kind)
        if kind in self.user_urls:
            reason = broker.probe(self.user_urls[kind], timeout_s=5.0)
            if reason:
                self.unavailable[kind] = reason
                raise BrokerError(reason)
            self.versions.setdefault(kind, "user-given")
            return self.user_urls[kind]
        server = self.owned.get(kind)
        if server is not None and not server.alive():
            server.start()  # it died since the last cell: same port, same data dir
        if server is None:
            if broker.find_binary() is None:
                self.unavailable[kind] = broker.missing_binary()
                raise BrokerError(self.unavailable[kind])
            server = broker(data_dir=self.base_dir / kind)
            try:
                server.start()
            except BrokerError as exc:
                self.unavailable[kind] = str(exc)
                raise
            except BaseException:  # interrupted while it starts: stop it, then go on out
                server.stop()
                raise
            self.owned[kind] = server
            self.versions[kind] = server.version
        return server.url

    def control(self, kind: str) -> list[str] | None:
        """A command prefix that administers the harness-owned broker of `kind`, if any."""
        server = self.owned.get(kind)
        return server.control() if server is not None else None

    def describe(self) -> dict[str, str]:
        """Masked URLs for run.json: never a password."""
        out = {k: mask(v) for k, v in self.user_urls.items()}
        out.update({k: mask(s.url) for k, s in self.owned.items()})
        return out

    def stop_all(self) -> None:
        for server in self.owned.values():
            server.stop()
        self.owned.clear()
