"""Broker kinds: each is one class in core/brokers/, and everything else reads the registry."""

from __future__ import annotations

import inspect
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from adapters import BACKENDS
from core.brokers import KINDS, kind_for_url
from core.brokers.base import BrokerKind, Persistence
from harness import system
from harness.brokers import Brokers
from harness.cli import broker_urls, build_parser, main
from tests.conftest import REPO, broker_url, epmd_pids

DECLARATIONS = {"name": str, "title": str, "schemes": tuple, "default_port": int,
                "example_url": str, "binary": str, "apt_package": str, "compose_service": str,
                "message_limit": int, "persistence": Mapping}


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_kind_declares_what_the_harness_needs(name):
    kind = KINDS[name]
    assert not inspect.isabstract(kind)
    for attribute, type_ in DECLARATIONS.items():
        assert isinstance(getattr(kind, attribute, None), type_), attribute
    assert kind.name == name and kind.schemes
    assert kind.url_problem(kind.example_url) is None
    assert kind_for_url(kind.example_url) is kind
    assert kind.persistence and all(isinstance(p, Persistence)
                                    for p in kind.persistence.values())
    assert kind.client_default_persistence in (None, *kind.persistence)
    assert f"\n  {kind.compose_service}:\n" in (REPO / "docker-compose.yml").read_text()


def test_every_backend_declares_a_registered_kind():
    assert {info.broker for info in BACKENDS.values()} - {None} <= set(KINDS)


def test_no_two_kinds_share_a_scheme():
    schemes = [scheme for kind in KINDS.values() for scheme in kind.schemes]
    assert len(schemes) == len(set(schemes))
    assert {"redis", "amqp"} <= set(KINDS)


BAD_URLS = ["notaurl", "http://bob:s3cret@127.0.0.1/", "{scheme}://bob:s3cret@127.0.0.1:99999/",
            "{scheme}://bob:s3cret@", "{scheme}:/no/host"]


@pytest.mark.parametrize("name", sorted(KINDS))
@pytest.mark.parametrize("template", BAD_URLS)
def test_url_errors_are_one_line_without_the_password(name, template):
    kind = KINDS[name]
    problem = kind.url_problem(template.format(scheme=kind.schemes[0]))
    assert problem and "\n" not in problem and "s3cret" not in problem
    assert kind.probe(template.format(scheme=kind.schemes[0])) == problem  # no connection tried


def test_the_driver_side_imports_without_site_packages():
    """memprobe and every kind run in the driver, in each backend's environment."""
    code = "import harness.memprobe, core.brokers; print(sorted(core.brokers.KINDS))"
    done = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                          cwd=REPO, env={"PYTHONPATH": str(REPO)}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(sorted(KINDS))


@pytest.mark.parametrize("name", sorted(KINDS))
def test_a_server_says_the_version_the_harness_reads_from_its_own(brokers, name):
    """A user-given server's version comes over the wire (INFO server, AMQP's
    Connection.Start, PostgreSQL's server_version and SHOW): on a harness-owned server
    it must match what the harness reads from its binary or log."""
    url = broker_url(brokers, name)
    assert url is not None
    said = KINDS[name].server_version(url)
    assert said is not None and said == brokers.versions[name]
    assert KINDS[name].server_version(f"{KINDS[name].schemes[0]}://127.0.0.1:1/") is None


@pytest.mark.parametrize("name", [  # RabbitMQ's reading (a minute on a busy machine) is
    # also covered by tests/test_memory.py
    pytest.param(name, marks=pytest.mark.extended) if name == "amqp" else name
    for name in sorted(KINDS)])
def test_a_harness_owned_server_reports_its_memory(brokers, name):
    url = broker_url(brokers, name)
    assert url is not None and KINDS[name].probe(url) is None
    reading = KINDS[name].memory(url, brokers.control(name))
    # an empty database holds no queue tables yet: 0 bytes is a true reading there
    assert isinstance(reading["bytes"], int) and reading["bytes"] >= 0, reading


class FakeQ(BrokerKind):
    """A broker kind that exists only in this test."""

    name: ClassVar[str] = "fakeq"
    title: ClassVar[str] = "FakeQ"
    schemes: ClassVar[tuple[str, ...]] = ("fakeq",)
    default_port: ClassVar[int] = 7000
    example_url: ClassVar[str] = "fakeq://127.0.0.1:7000/"
    binary: ClassVar[str] = "fakeq-server-not-installed"
    apt_package: ClassVar[str] = "fakeq-server"
    compose_service: ClassVar[str] = "fakeq"
    message_limit: ClassVar[int] = 1024
    persistence: ClassVar[dict[str, Persistence]] = {"off": Persistence(durable=False)}

    @classmethod
    def probe(cls, url: str, timeout_s: float = 3.0) -> str | None:
        return cls.url_problem(url) or "nothing answers"

    @classmethod
    def server_version(cls, url: str, timeout_s: float = 3.0) -> str | None:
        return None

    @classmethod
    def memory(cls, url: str, control: list[str] | None) -> dict[str, Any]:
        return {"bytes": None, "method": "none"}

    @property
    def url(self) -> str:
        return f"fakeq://127.0.0.1:{self.port}/"

    def command(self) -> tuple[list[str], dict[str, str]]:
        return [self.binary], {}


@pytest.fixture
def fake_kind(monkeypatch):
    monkeypatch.setitem(KINDS, FakeQ.name, FakeQ)
    return FakeQ


def test_an_extra_kind_gets_its_url_flag(fake_kind):
    for command in ("run", "selftest", "doctor"):
        args = build_parser().parse_args([command, "--fakeq-url", "fakeq://127.0.0.1:7000/"])
        assert broker_urls(args)["fakeq"] == "fakeq://127.0.0.1:7000/"


def test_an_extra_kinds_bad_url_is_one_line_and_exit_2(fake_kind, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--fakeq-url", "redis://127.0.0.1:6379/0"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "python -m harness run: error: argument --fakeq-url: not a fakeq:// URL: "
        "redis://127.0.0.1:6379/0"]


def test_an_extra_kind_has_its_doctor_lines_and_package(fake_kind, capsys):
    assert main(["doctor", "--fakeq-url", "fakeq://127.0.0.1:7000/"]) == 1
    out = capsys.readouterr().out
    lines = {line.split()[0]: " ".join(line.split()[1:]) for line in out.splitlines()}
    assert lines["fakeq-server-not-installed"] == (
        "MISSING: install it with `apt-get install -y fakeq-server` (as root), or start one "
        "with `docker compose up -d fakeq` and pass --fakeq-url fakeq://127.0.0.1:7000/")
    assert lines["--fakeq-url"] == "nothing answers"
    assert "fakeq-server" in system.missing(with_test_tools=False)


def test_a_kind_module_is_found_by_scanning(tmp_path: Path):
    """Dropping a module into core/brokers/ is all it takes (checked on a copy of core)."""
    shutil.copytree(REPO / "core", tmp_path / "core")
    (tmp_path / "core" / "brokers" / "fakeq.py").write_text(
        "from core.brokers.redis import Redis\n\n\n"
        "class FakeQ(Redis):\n    name = 'fakeq'\n    schemes = ('fakeq',)\n")
    code = "import core.brokers; print(sorted(core.brokers.KINDS))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(sorted([*KINDS, "fakeq"]))


def test_a_rabbitmq_node_that_exits_at_start_leaves_no_epmd_behind(tmp_path: Path) -> None:
    """A node that cannot start (here its data dir is root's alone, which the rabbitmq
    user cannot enter) fails with its log, and its private epmd daemon, which detaches
    from the node's process tree, is stopped too."""
    from core.brokers.base import BrokerError
    from core.brokers.rabbitmq import RabbitMQ
    if RabbitMQ.find_binary() is None:
        pytest.skip(RabbitMQ.missing_binary())
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    before = epmd_pids()
    with pytest.raises(BrokerError, match="exited with code"):
        Brokers(closed, {}).url("amqp")
    assert epmd_pids() - before == set()


@pytest.mark.slow
def test_a_rabbitmq_start_cut_short_by_two_signals_leaves_nothing(tmp_path: Path) -> None:
    """Ctrl-C while RabbitMQ starts, then SIGTERM while it is being stopped: the stop
    finishes anyway, epmd included (it used to be cut short and leave epmd running)."""
    import os
    import signal
    import tempfile
    import time

    from core.brokers.rabbitmq import RabbitMQ
    from tests.conftest import live_in_session
    if RabbitMQ.find_binary() is None:
        pytest.skip(RabbitMQ.missing_binary())
    base = Path(tempfile.mkdtemp(prefix="qb-interrupted-start-"))
    base.chmod(0o755)  # the rabbitmq user enters it
    code = ("import sys; from pathlib import Path; from core import interrupts; "
            "from harness.brokers import Brokers\n"
            "try:\n    with interrupts.handled():\n"
            f"        Brokers(Path({str(base)!r}), {{}}).url('amqp')\n"
            "except interrupts.Interrupted:\n    sys.exit(130)\n")
    before = epmd_pids()
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        deadline = time.monotonic() + 20
        while epmd_pids() == before and time.monotonic() < deadline:  # the node is booting
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 130
        time.sleep(0.5)
        assert live_in_session(proc.pid) == []
        assert epmd_pids() - before == set()
    finally:
        proc.kill()
        shutil.rmtree(base, ignore_errors=True)


def test_a_user_given_server_is_recorded_with_its_version(brokers, tmp_path):
    """run.json's broker_versions (and so compare's fingerprint) name what a user-given
    server is, not only that it was user-given: a CI job whose broker image moved from
    one version to the next is told so."""
    url = broker_url(brokers, "redis")
    given = Brokers(tmp_path, {"redis": url})
    assert given.url("redis") == url
    assert given.versions == {"redis": brokers.versions["redis"]}


def test_a_peer_that_hangs_up_mid_handshake_has_no_version() -> None:
    """server_version of a user-given URL never raises: a peer that sends AMQP's first
    byte and hangs up gives None, so the run goes on."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer_once() -> None:
        peer, _ = listener.accept()
        peer.recv(8)
        peer.sendall(b"\x01")
        peer.close()

    thread = threading.Thread(target=answer_once, daemon=True)
    thread.start()
    try:
        assert KINDS["amqp"].server_version(f"amqp://guest:guest@127.0.0.1:{port}/") is None
    finally:
        thread.join(5)
        listener.close()
