"""PostgreSQL: Debian's server binaries on a private cluster (initdb as the postgres user,
a fresh password, SCRAM on loopback), a stdlib login probe and relation sizes as memory."""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from core import pgwire, procs
from core.brokers.base import BrokerError, BrokerKind, Persistence
from core.urls import mask

SERVER_USER = "postgres"  # initdb and postgres refuse to run as root
BIN_ROOT = Path("/usr/lib/postgresql")  # Debian: /usr/lib/postgresql/<major>/bin
FAST_SHUTDOWN_S = 10.0
# Every table of the database the URL names, with its indexes, TOAST and free-space
# maps: the backends' queue tables are the only ones there.
TABLE_BYTES_SQL = (
    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'm') "
    "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg\\_toast%'")
DURABILITY_SETTINGS = ("fsync", "synchronous_commit", "full_page_writes", "wal_level")


def _newest_bin_dir() -> Path | None:
    """The bin directory of the newest PostgreSQL major version installed (Debian layout)."""
    found = [path for path in BIN_ROOT.glob("*/bin") if (path / "postgres").exists()
             and path.parent.name.isdigit()]
    return max(found, key=lambda path: int(path.parent.name), default=None)


def _described(url: str, timeout_s: float = 5.0) -> str:
    """The server's version and its durability settings: "15.14 (fsync=on, ...)"."""
    with pgwire.Connection(url, Postgres.default_port, timeout_s) as conn:
        values = [conn.query(f"SHOW {name}")[0][0] for name in DURABILITY_SETTINGS]
        version = conn.parameters.get("server_version", "unknown")
    found = re.match(r"[\d.]+", version)
    shown = ", ".join(f"{k}={v}" for k, v in zip(DURABILITY_SETTINGS, values, strict=True))
    return f"{found.group(0) if found else version} ({shown})"


@dataclass(kw_only=True)
class Postgres(BrokerKind):
    name: ClassVar[str] = "postgres"
    title: ClassVar[str] = "PostgreSQL"
    schemes: ClassVar[tuple[str, ...]] = ("postgresql", "postgres")
    default_port: ClassVar[int] = 5432
    example_url: ClassVar[str] = "postgresql://queuebench:queuebench@127.0.0.1:5432/queuebench"
    binary: ClassVar[str] = "postgres"
    apt_package: ClassVar[str] = "postgresql"
    compose_service: ClassVar[str] = "postgres"
    message_limit: ClassVar[int] = 1024 * 1024 * 1024  # the largest field value (bytea, text)
    # The server's defaults (fsync on, synchronous_commit on): a committed job is in the
    # WAL, which a kill -9 of the server does not lose; read_version records them.
    persistence: ClassVar[dict[str, Persistence]] = {"wal-fsync": Persistence(durable=True)}
    default_persistence: ClassVar[str] = "wal-fsync"
    reliable_persistence: ClassVar[str] = "wal-fsync"
    dedicated_for_kill: ClassVar[bool] = False  # a second cluster costs an initdb per cell

    user: str = "queuebench"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18))

    @classmethod
    def flag(cls) -> str:
        return "--pg-url"  # shorter than the kind's name, as users write it

    @classmethod
    def find_binary(cls) -> str | None:
        bin_dir = _newest_bin_dir()
        return str(bin_dir / cls.binary) if bin_dir else super().find_binary()

    @classmethod
    def probe(cls, url: str, timeout_s: float = 3.0) -> str | None:
        """A full login (password or SCRAM), so wrong credentials or a missing database
        are caught before any backend starts."""
        problem = cls.url_problem(url)
        if problem:
            return problem
        try:
            with pgwire.Connection(url, cls.default_port, timeout_s):
                return None
        except pgwire.PgError as exc:
            if exc.code in ("28P01", "28000"):
                return f"postgres at {mask(url)} refused the credentials: {exc}"
            return f"postgres at {mask(url)} refused the connection: {exc}"
        except pgwire.PgProtocolError as exc:
            return f"no PostgreSQL answers at {mask(url)}: {exc}"
        except OSError as exc:
            return f"cannot reach postgres at {mask(url)}: {exc}"

    @classmethod
    def memory(cls, url: str, control: list[str] | None, queue: str | None = None
               ) -> dict[str, Any]:
        """The database's tables are the queue's: their size is its own, `queue` or not."""
        try:
            with pgwire.Connection(url, cls.default_port, timeout_s=30.0) as conn:
                rows = conn.query(TABLE_BYTES_SQL)
        except (pgwire.PgError, pgwire.PgProtocolError, OSError) as exc:
            return {"bytes": None, "method": f"postgres relation sizes unreadable: {exc}"}
        return {"bytes": int(rows[0][0] or 0),
                "method": "postgres pg_total_relation_size of the database's tables "
                          "(heap, indexes, TOAST)"}

    # -- a harness-owned server -----------------------------------------------------------
    @property
    def url(self) -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/postgres"

    @property
    def cluster(self) -> Path:
        return self.data_dir / "pgdata"

    def run_as(self) -> str | None:
        return SERVER_USER if os.geteuid() == 0 else None

    def _bin(self, name: str) -> str:
        binary = self.find_binary()
        if binary is None:
            raise BrokerError(self.missing_binary())
        return str(Path(binary).with_name(name))

    def _env(self) -> dict[str, str]:
        """The harness's environment without libpq's PG* variables (they name other servers)."""
        return {k: v for k, v in os.environ.items() if not k.startswith("PG")}

    def _init_cluster(self) -> None:
        """initdb into `cluster` (once): this server's superuser with its fresh password."""
        user = self.run_as()
        if user is not None:
            try:
                pwd.getpwnam(user)
            except KeyError:
                raise BrokerError(f"no {user!r} user to run initdb and postgres as (they refuse "
                                  f"root): {self.install_hint()}") from None
            shutil.chown(self.data_dir, user)
        pwfile = self.data_dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if user is not None:
            shutil.chown(pwfile, user)
        cmd = [self._bin("initdb"), "-D", str(self.cluster), "-U", self.user,
               f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8", "--no-locale"]
        log = self.data_dir / "initdb.log"
        proc = procs.spawn(cmd, env=self._env(), log_path=log, cwd=self.data_dir, user=user)
        try:
            code = proc.wait(timeout=120)
        finally:
            pwfile.unlink(missing_ok=True)
        if code != 0:
            raise BrokerError(f"initdb exited with code {code}:\n{procs.tail(log, 10)}")

    def command(self) -> tuple[list[str], dict[str, str]]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not (self.cluster / "PG_VERSION").exists():
            self._init_cluster()
        settings = {"listen_addresses": "127.0.0.1", "port": str(self.port),
                    "unix_socket_directories": str(self.data_dir), "max_connections": "200",
                    **self.options}
        cmd = [self._bin("postgres"), "-D", str(self.cluster)]
        for key, value in settings.items():
            cmd += ["-c", f"{key}={value}"]
        return cmd, self._env()

    def read_version(self) -> str:
        """The server version with its durability settings (the defaults unless options)."""
        return _described(self.url)

    @classmethod
    def server_version(cls, url: str, timeout_s: float = 3.0) -> str | None:
        """As read_version: the version with its durability settings."""
        try:
            return _described(url, timeout_s)
        except (pgwire.PgError, pgwire.PgProtocolError, OSError):
            return None

    def stop(self) -> None:
        """A fast shutdown (SIGINT: running sessions are ended), SIGKILL if it hangs."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGINT)
                self.proc.wait(FAST_SHUTDOWN_S)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        super().stop()
