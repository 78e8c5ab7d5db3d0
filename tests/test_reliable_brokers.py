"""The reliable profile's durable brokers (harness/brokers.py): real servers, asked through
the URLs cells get which persistence they run with."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.brokers import KINDS
from core.urls import connect
from harness.brokers import USER_GIVEN, Brokers
from harness.runner import RunConfig, Runner
from scenarios.base import RunOptions


def config_get(url: str, name: str) -> str:
    """CONFIG GET `name` of the (password-less) Redis at `url`, as an inline command."""
    with connect(url, 6379, 5.0) as sock:
        sock.sendall(f"CONFIG GET {name}\r\n".encode())
        reply = b""
        while reply.count(b"\r\n") < 5:
            chunk = sock.recv(4096)
            assert chunk, f"redis at {url} closed the connection"
            reply += chunk
    return reply.split(b"\r\n")[4].decode()  # *2, $len, name, $len, value


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_kind_names_a_durable_persistence_for_the_reliable_profile(name: str) -> None:
    kind = KINDS[name]
    assert kind.default_persistence in kind.persistence
    assert kind.persistence[kind.reliable_persistence].durable
    assert kind.persistence_for("reliable") == kind.reliable_persistence
    assert kind.persistence_for("default") == kind.persistence_for("tuned")


def test_reliable_redis_cells_get_a_server_with_aof(brokers: Brokers) -> None:
    persistence = {p: brokers.persistence("redis", p) for p in ("default", "reliable")}
    assert persistence == {"default": "off", "reliable": "aof-everysec"}
    default, reliable = (brokers.url("redis", persistence[p]) for p in ("default", "reliable"))
    assert default != reliable
    assert config_get(reliable, "appendonly") == "yes"
    assert config_get(reliable, "appendfsync") == "everysec"
    assert config_get(default, "appendonly") == "no"
    assert brokers.url("redis", "aof-everysec") == reliable  # started once, then shared
    assert {"redis", "redis@aof-everysec"} <= set(brokers.describe()) & set(brokers.versions)


def test_a_user_given_redis_serves_reliable_cells_as_it_is(brokers: Brokers) -> None:
    users = Brokers(brokers.base_dir / "user", {"redis": brokers.url("redis")})
    assert users.persistence("redis", "reliable") == USER_GIVEN
    assert users.url("redis", users.persistence("redis", "reliable")) == brokers.url("redis")
    assert not users.owned  # nothing started beside the user's server
    assert config_get(brokers.url("redis"), "appendonly") == "no"  # and nothing switched


def test_client_chosen_durability_needs_no_second_server() -> None:
    """RabbitMQ's durability is the client's (durable queues, persistent messages), so the
    reliable cells share the one server, and a user-given one is durable too."""
    users = Brokers(Path("/nonexistent"), {"amqp": "amqp://u:p@127.0.0.1:5672/"})
    assert users.persistence("amqp", "reliable") == "durable"
    assert users.slot("amqp", "durable") == users.slot("amqp", "transient") == "amqp"
    assert users.slot("postgres", "wal-fsync") == "postgres"
    assert users.slot("redis", "aof-everysec") == "redis@aof-everysec"
    assert users.slot("redis", "off") == "redis"


def test_the_runner_hands_reliable_cells_the_aof_server(tmp_path: Path) -> None:
    """The URL the runner gives a cell (what its driver gets), per profile."""
    options = RunOptions(quick=True, slots=2, profiles=("default", "reliable"))
    runner = Runner(RunConfig(scenarios=["throughput"], backends=["redis-raw"], rounds=1,
                              out=tmp_path / "run", options=options))
    try:
        cells = {cell.profile: cell for _, cell in runner.plan()}
        assert set(cells) == {"default", "reliable"}
        urls = {profile: runner._skip_reason(cell)[1] for profile, cell in cells.items()}
        assert config_get(urls["reliable"], "appendonly") == "yes"
        assert config_get(urls["default"], "appendonly") == "no"
        assert {p: runner._persistence(c) for p, c in cells.items()} == {
            "default": "off", "reliable": "aof-everysec"}  # what the cells record
        servers = runner.brokers.describe()
    finally:
        runner.stop_brokers()
    assert servers and not runner.broker_dir.exists()  # stopped, and no data left behind


def test_a_broker_that_died_or_stopped_answering_is_lost(tmp_path: Path) -> None:
    """The runner asks after each cell whether its broker is still there: a figure measured
    while it was gone would be false. A harness-owned server that exited is lost (and
    starts again on the same port), a user-given URL that stopped answering too."""
    owned = Brokers(tmp_path / "owned", {})
    try:
        url = owned.url("redis")
        assert owned.lost("redis") is None
        owned.owned["redis"].kill9()
        reason = owned.lost("redis")
        assert reason and "died during the cell" in reason
        assert owned.url("redis") == url and owned.lost("redis") is None  # back again
        users = Brokers(tmp_path / "users", {"redis": url})
        assert users.lost("redis") is None
        owned.owned["redis"].kill9()
        reason = users.lost("redis")
        assert reason and "stopped answering" in reason
    finally:
        owned.stop_all()
