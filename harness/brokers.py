"""The run's broker pool: a URL per (broker kind, persistence), user-given or harness-owned.

A profile runs with the persistence its broker kind declares for it
(`BrokerKind.persistence_for`: Redis's reliable cells need AOF, its default
ones none). Persistences that start the server with the same options share
one server; any other gets a second harness-owned server of the kind,
slot "<kind>@<persistence>" (run.json's brokers and broker_versions). A
user-given URL serves every persistence as it is: where the durability is a
server setting the harness cannot switch there, cells record "user-given".

A harness-owned server is started on first use and stopped, with everything
it spawned, by `stop_all` on every exit path of the run (end, Ctrl-C, error).
"""

from __future__ import annotations

import time
from pathlib import Path

from core.brokers import broker_kind
from core.brokers.base import BrokerError, BrokerKind
from core.urls import mask

USER_GIVEN = "user-given"  # the persistence of a user's server: whatever it is configured with
PROBE_TIMEOUT_S = 5.0  # a user-given URL that does not answer within this is unreachable


def unreachable_user_urls(urls: dict[str, str | None], kinds: set[str]) -> list[str]:
    """Why each user-given URL of a broker kind in `kinds` cannot be used (one line each,
    password masked, naming the flag); checked before a run starts, as it is the user's
    input: a run that would skip every backend on that broker is not the run asked for."""
    problems = []
    for kind in sorted(kinds):
        url = urls.get(kind)
        if url and (reason := broker_kind(kind).probe(url, timeout_s=PROBE_TIMEOUT_S)):
            problems.append(f"{reason} ({broker_kind(kind).flag()})")
    return problems


class Brokers:
    """Provides a URL per broker kind and persistence: user-given (probed) or harness-owned."""

    def __init__(self, base_dir: Path, urls: dict[str, str | None]) -> None:
        self.base_dir = base_dir
        self.user_urls = {k: v for k, v in urls.items() if v}
        self.owned: dict[str, BrokerKind] = {}  # by slot: "<kind>" or "<kind>@<persistence>"
        self.unavailable: dict[str, str] = {}
        self.versions: dict[str, str] = {}

    def persistence(self, kind: str, profile: str) -> str:
        """What cells of `profile` run with on `kind`: the kind's setting for the profile,
        or "user-given" when that is a server setting of a user-given URL."""
        broker = broker_kind(kind)
        if kind in self.user_urls and broker.client_default_persistence is None:
            return USER_GIVEN
        return broker.persistence_for(profile)

    def slot(self, kind: str, persistence: str | None = None) -> str:
        """The server `persistence` runs on: the kind's own (started with the default
        persistence's options) unless it needs other server options."""
        broker = broker_kind(kind)
        if persistence in (None, USER_GIVEN):
            return kind
        options = broker.persistence[persistence].server_options
        if options == broker.persistence[broker.default_persistence].server_options:
            return kind
        return f"{kind}@{persistence}"

    def url(self, kind: str, persistence: str | None = None) -> str:
        """The URL for `kind` at `persistence` (None: its default), starting a server if
        needed; raises BrokerError with the fix."""
        slot = self.slot(kind, persistence)
        for known in (kind, slot):
            if known in self.unavailable:
                raise BrokerError(self.unavailable[known])
        broker = broker_kind(kind)
        if kind in self.user_urls:
            reason = broker.probe(self.user_urls[kind], timeout_s=PROBE_TIMEOUT_S)
            if reason:
                self.unavailable[kind] = reason
                raise BrokerError(reason)
            if kind not in self.versions:  # what the server says it is, as owned ones
                self.versions[kind] = (broker.server_version(self.user_urls[kind],
                                                             PROBE_TIMEOUT_S) or USER_GIVEN)
            return self.user_urls[kind]
        server = self.owned.get(slot)
        if server is not None and not server.alive():  # it died since the last cell
            server.stop()  # what is left of it (its guard, RabbitMQ's epmd)
            try:
                server.start()  # same port, same data dir
            except BrokerError as exc:
                self.unavailable[slot] = str(exc)
                raise
        if server is None:
            server = self._start(broker, slot, persistence or broker.default_persistence)
        return server.url

    def lost(self, kind: str, persistence: str | None = None) -> str | None:
        """Why the server `kind` at `persistence` is gone now (a harness-owned one that
        exited, a user-given one that no longer answers), or None while it is there."""
        if kind in self.user_urls:
            broker, url = broker_kind(kind), self.user_urls[kind]
            reason = broker.probe(url, timeout_s=PROBE_TIMEOUT_S)
            if reason:  # once more: a server at its connection limit may refuse one probe
                time.sleep(0.5)
                reason = broker.probe(url, timeout_s=PROBE_TIMEOUT_S)
            return f"the broker stopped answering during the cell: {reason}" if reason else None
        server = self.owned.get(self.slot(kind, persistence))
        if server is None or server.alive():
            return None
        return (f"the harness's {kind} server ({mask(server.url)}) died during the cell; "
                f"a figure measured without it would be false")

    def _start(self, broker: type[BrokerKind], slot: str, persistence: str) -> BrokerKind:
        """A new server of `broker` in its own data dir, with `persistence`'s options."""
        if broker.find_binary() is None:
            self.unavailable[broker.name] = broker.missing_binary()
            raise BrokerError(self.unavailable[broker.name])
        server = broker(data_dir=self.base_dir / slot,
                        options=dict(broker.persistence[persistence].server_options))
        try:
            server.start()  # stops what it started when it fails or is interrupted
        except BrokerError as exc:
            self.unavailable[slot] = str(exc)
            raise
        self.owned[slot] = server
        self.versions[slot] = server.version
        return server

    def control(self, kind: str, persistence: str | None = None) -> list[str] | None:
        """A command prefix that administers the harness-owned server of `kind` that
        `persistence` runs on, if any."""
        server = self.owned.get(self.slot(kind, persistence))
        return server.control() if server is not None else None

    def describe(self) -> dict[str, str]:
        """Masked URLs for run.json: never a password."""
        out = {k: mask(v) for k, v in self.user_urls.items()}
        out.update({slot: mask(s.url) for slot, s in self.owned.items()})
        return out

    def stop_all(self) -> None:
        for server in self.owned.values():
            server.stop()
        self.owned.clear()
