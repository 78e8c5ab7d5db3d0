"""Harness-owned brokers: redis-server and rabbitmq-server on free loopback
ports with private data dirs, or user-given URLs.

Each server is started in its own process group, bound to 127.0.0.1, and
stopped (with everything it spawned) at the end of the run, on Ctrl-C and
on errors. RabbitMQ gets a fresh random user and password per run.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from core import interrupts, procs
from core.urls import PROBES, mask

INSTALL_HINT = {
    "redis": "install it with `apt-get install -y redis-server` (as root), or start one with "
    "`docker compose up -d redis` and pass --redis-url redis://127.0.0.1:6379/0",
    "amqp": "install it with `apt-get install -y rabbitmq-server` (as root), or start one with "
    "`docker compose up -d rabbitmq` and pass --amqp-url amqp://guest:guest@127.0.0.1:5672/",
}
BINARIES = {"redis": "redis-server", "amqp": "rabbitmq-server"}


class BrokerError(RuntimeError):
    """A broker could not be started or reached; the message says why and how to fix it."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_binary(kind: str) -> str | None:
    name = BINARIES[kind]
    return shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()), None
    )


@dataclass(kw_only=True)
class OwnedBroker:
    """A broker process the harness started and must stop."""

    kind: str
    data_dir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    version: str = "unknown"
    options: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        raise NotImplementedError

    def command(self) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def start(self, timeout_s: float = 60.0) -> None:
        cmd, env = self.command()
        self.proc = procs.spawn(cmd, env=env, log_path=self.data_dir / "server.log",
                                cwd=self.data_dir)
        deadline = time.monotonic() + timeout_s
        while (reason := PROBES[self.kind](self.url, timeout_s=1.0)) is not None:
            if self.proc.poll() is not None:
                raise BrokerError(f"{BINARIES[self.kind]} exited with code {self.proc.returncode}"
                                  f":\n{procs.tail(self.data_dir / 'server.log', 10)}")
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerError(f"{BINARIES[self.kind]} not answering after {timeout_s:.0f}s: "
                                  f"{reason}")
            time.sleep(0.05)
            interrupts.check()
        self.version = self.read_version()

    def read_version(self) -> str:
        return "unknown"

    def stop(self) -> None:
        if self.proc is not None:
            procs.stop_tree(self.proc, grace_s=10.0, whole_group=True)
            self.proc = None

    def kill9(self) -> None:
        """SIGKILL the broker (crash scenario); `start` brings it back on the same port."""
        if self.proc is not None:
            procs.signal_tree(self.proc.pid, 9)
            self.proc.wait(10)
            self.proc = None

    def pids(self) -> list[int]:
        if self.proc is None:
            return []
        return [self.proc.pid, *procs.descendants(self.proc.pid)]


@dataclass(kw_only=True)
class RedisServer(OwnedBroker):
    kind: str = "redis"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> tuple[list[str], dict[str, str]]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        binary = find_binary("redis") or "redis-server"
        appendonly = self.options.get("appendonly", "no")
        cmd = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
               str(self.data_dir), "--save", "", "--appendonly", appendonly,
               "--appendfsync", self.options.get("appendfsync", "everysec"),
               "--protected-mode", "yes", "--daemonize", "no", "--maxclients", "10000"]
        return cmd, dict(os.environ)

    def read_version(self) -> str:
        out = subprocess.run([find_binary("redis") or "redis-server", "--version"],
                             capture_output=True, text=True, check=False).stdout
        found = re.search(r"v=(\S+)", out)
        return found.group(1) if found else out.strip()


@dataclass(kw_only=True)
class RabbitServer(OwnedBroker):
    kind: str = "amqp"
    user: str = field(default_factory=lambda: f"qb_{secrets.token_hex(4)}")
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    dist_port: int = field(default_factory=free_port)
    epmd_port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"amqp://{self.user}:{self.password}@127.0.0.1:{self.port}/%2F"

    def _run_as(self) -> list[str]:
        """rabbitmq-server refuses to run as root: drop to the rabbitmq user if we are root."""
        if os.geteuid() != 0:
            return []
        try:
            pwd.getpwnam("rabbitmq")
        except KeyError:
            return []
        shutil.chown(self.data_dir, "rabbitmq")
        for path in self.data_dir.rglob("*"):
            shutil.chown(path, "rabbitmq")
        return ["runuser", "-u", "rabbitmq", "--"]

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
        env = self.node_env()
        binary = find_binary("amqp") or "rabbitmq-server"
        return [*prefix, "env", *(f"{k}={v}" for k, v in env.items()), binary], env

    def node_env(self) -> dict[str, str]:
        """The environment that names this node and its private files."""
        env = {
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
        return env

    def ctl_command(self) -> list[str]:
        """rabbitmqctl aimed at this node (node and CLI share the user's Erlang cookie)."""
        ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
        env = self.node_env()
        prefix = ["runuser", "-u", "rabbitmq", "--"] if os.geteuid() == 0 else []
        return [*prefix, "env", *(f"{k}={v}" for k, v in env.items()), ctl,
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

    def kill9(self) -> None:
        super().kill9()

    def _stop_epmd(self) -> None:
        """The node's private epmd daemon detaches from the tree; stop it by its port."""
        epmd = shutil.which("epmd") or next(Path("/usr/lib/erlang").glob("erts-*/bin/epmd"), None)
        if epmd is None:
            return
        subprocess.run([str(epmd), "-kill"], env={"ERL_EPMD_PORT": str(self.epmd_port)},
                       capture_output=True, timeout=10, check=False)


SERVERS: dict[str, type[OwnedBroker]] = {"redis": RedisServer, "amqp": RabbitServer}


class Brokers:
    """Provides a URL per broker kind: user-given (probed) or harness-owned (started)."""

    def __init__(self, base_dir: Path, urls: dict[str, str | None]) -> None:
        self.base_dir = base_dir
        self.user_urls = {k: v for k, v in urls.items() if v}
        self.owned: dict[str, OwnedBroker] = {}
        self.unavailable: dict[str, str] = {}
        self.versions: dict[str, str] = {}

    def url(self, kind: str) -> str:
        """The URL for `kind`, starting a server if needed; raises BrokerError with the fix."""
        if kind in self.unavailable:
            raise BrokerError(self.unavailable[kind])
        if kind in self.user_urls:
            reason = PROBES[kind](self.user_urls[kind], timeout_s=5.0)
            if reason:
                self.unavailable[kind] = reason
                raise BrokerError(reason)
            self.versions.setdefault(kind, "user-given")
            return self.user_urls[kind]
        server = self.owned.get(kind)
        if server is not None and (server.proc is None or server.proc.poll() is not None):
            server.start()  # it died since the last cell: same port, same data dir
        if kind not in self.owned:
            if find_binary(kind) is None:
                reason = f"{BINARIES[kind]} not found: {INSTALL_HINT[kind]}"
                self.unavailable[kind] = reason
                raise BrokerError(reason)
            server = SERVERS[kind](data_dir=self.base_dir / kind)
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
        return self.owned[kind].url

    def control(self, kind: str) -> list[str] | None:
        """A command prefix that administers the harness-owned broker of `kind`, if any."""
        server = self.owned.get(kind)
        return server.ctl_command() if isinstance(server, RabbitServer) else None

    def describe(self) -> dict[str, str]:
        """Masked URLs for run.json: never a password."""
        out = {k: mask(v) for k, v in self.user_urls.items()}
        out.update({k: mask(s.url) for k, s in self.owned.items()})
        return out

    def stop_all(self) -> None:
        for server in self.owned.values():
            server.stop()
        self.owned.clear()
