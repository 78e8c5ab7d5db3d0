"""Broker URL probes: bad URLs are reported within seconds, passwords never shown."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from core.urls import mask, probe_amqp, probe_redis
from harness.brokers import free_port


def test_mask_hides_passwords():
    assert mask("amqp://bob:s3cret@host:5672/%2F") == "amqp://bob:***@host:5672/%2F"
    assert mask("redis://:pw@127.0.0.1:6379/0") == "redis://:***@127.0.0.1:6379/0"
    assert mask("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_refused_port_is_reported_fast():
    port = free_port()
    began = time.monotonic()
    assert "cannot reach redis" in probe_redis(f"redis://127.0.0.1:{port}/0")
    assert "cannot reach amqp" in probe_amqp(f"amqp://u:p@127.0.0.1:{port}/")
    assert time.monotonic() - began < 5


def test_wrong_scheme():
    assert "not a redis:// URL" in probe_redis("http://127.0.0.1/")


@pytest.fixture
def password_redis(tmp_path):
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: run `make setup`")
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--requirepass", "sesame", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if "cannot reach" not in (probe_redis(f"redis://127.0.0.1:{port}/0") or ""):
                break
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def test_redis_password_checks(password_redis):
    port = password_redis
    assert "needs a password" in probe_redis(f"redis://127.0.0.1:{port}/0")
    wrong = probe_redis(f"redis://:nope@127.0.0.1:{port}/0")
    assert "refused the credentials" in wrong and "nope" not in wrong
    assert probe_redis(f"redis://:sesame@127.0.0.1:{port}/0") is None
