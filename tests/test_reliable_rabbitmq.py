"""Every RabbitMQ backend runs durable in the reliable profile: its queue is durable and
the messages it publishes are persistent, as the real broker reports them
(rabbitmqctl list_queues), and its settings say so."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from adapters import BACKENDS
from core.envnames import BROKER_URL_ENV
from harness.brokers import Brokers
from tests.conftest import REPO, broker_url, require_env

AMQP_BACKENDS = sorted(name for name, info in BACKENDS.items()
                       if info.broker == "amqp" and "@" not in name)
# What each adapter's settings say about its durability (a key and a word in its value).
SAYS_DURABLE = {"amqp-raw": ("queue", "durable"), "dramatiq-rabbitmq": ("persistence", "durable"),
                "taskiq-rabbitmq": ("queue", "durable"),
                "celery-rabbitmq": ("amqp_durability", "durable queue, delivery_mode 2")}


def queues(brokers: Brokers) -> dict[str, tuple[str, int, int]]:
    """name -> (durable, messages, persistent messages) of every queue on the pool's node.

    A quorum queue keeps every message in its replicated log, whatever its delivery
    mode, and reports no messages_persistent: all of its messages count as persistent."""
    control = brokers.control("amqp")
    assert control is not None
    done = subprocess.run([*control, "list_queues", "--no-table-headers", "name", "durable",
                           "type", "messages", "messages_persistent"],
                          capture_output=True, text=True, timeout=60, check=True)
    out = {}
    for line in done.stdout.splitlines():
        name, durable, kind, messages, persistent = line.split("\t")
        out[name] = (durable, int(messages),
                     int(messages) if kind == "quorum" else int(persistent))
    return out


@pytest.mark.slow
@pytest.mark.extended
@pytest.mark.parametrize("backend", AMQP_BACKENDS)
def test_reliable_cells_declare_durable_queues_and_persistent_messages(
        backend: str, brokers: Brokers, tmp_path: Path) -> None:
    assert brokers.persistence("amqp", "reliable") == "durable"
    url = broker_url(brokers, "amqp")
    assert url is not None
    python = require_env(BACKENDS[backend].family)
    queue = f"reliable-{backend}"
    done = subprocess.run([str(python), str(REPO / "tests" / "reliable_probe.py"), backend,
                           "reliable", queue, str(tmp_path)], capture_output=True, text=True,
                          timeout=120, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO), BROKER_URL_ENV: url})
    assert done.returncode == 0, done.stderr[-2000:]
    settings = json.loads(done.stdout.splitlines()[-1])
    key, word = SAYS_DURABLE[backend]
    assert word in str(settings.get(key)), f"{backend} settings: {key}={settings.get(key)}"
    deadline = time.monotonic() + 15  # a quorum queue's counts are emitted periodically
    while True:
        mine = {name: q for name, q in queues(brokers).items() if name.startswith(queue)}
        holding = {name: q for name, q in mine.items() if q[1]}
        if holding or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert holding, f"no queue of {backend} holds the jobs: {mine}"
    for name, (durable, messages, persistent) in holding.items():
        assert durable == "true", f"{name} is not durable"
        assert persistent == messages, f"{name}: {persistent} of {messages} persistent"


def confirming_channels(brokers: Brokers) -> int:
    """How many of the node's channels are in confirm mode (publisher confirms)."""
    control = brokers.control("amqp")
    assert control is not None
    done = subprocess.run([*control, "list_channels", "--no-table-headers", "confirm"],
                          capture_output=True, text=True, timeout=60, check=True)
    return sum(line.strip() == "true" for line in done.stdout.splitlines())


@pytest.mark.slow
@pytest.mark.extended
@pytest.mark.parametrize("backend", AMQP_BACKENDS)
def test_reliable_cells_publish_with_confirms(backend: str, brokers: Brokers,
                                              tmp_path: Path) -> None:
    """Every RabbitMQ backend's reliable profile waits for the broker's confirm on each
    publish, as the broker sees its channels while the producer is open."""
    url = broker_url(brokers, "amqp")
    assert url is not None
    python = require_env(BACKENDS[backend].family)
    before = confirming_channels(brokers)
    with subprocess.Popen([str(python), str(REPO / "tests" / "reliable_probe.py"), backend,
                           "reliable", f"confirms-{backend}", str(tmp_path), "hold"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO),
                               BROKER_URL_ENV: url}) as probe:
        try:
            assert probe.stdout is not None and probe.stdin is not None
            assert probe.stdout.readline(), f"{backend}: the probe printed no settings"
            during = confirming_channels(brokers)
            probe.stdin.write("\n")
            probe.stdin.flush()
        finally:
            try:
                probe.wait(timeout=60)
            except subprocess.TimeoutExpired:
                probe.kill()
    assert during > before, f"{backend}: no channel of its producer is in confirm mode"
