"""Broker URL probes: bad URLs are reported within seconds, passwords never shown."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from core.brokers.base import free_port
from core.brokers.rabbitmq import RabbitMQ
from core.brokers.redis import Redis
from core.urls import mask


def test_mask_hides_passwords():
    assert mask("amqp://bob:s3cret@host:5672/%2F") == "amqp://bob:***@host:5672/%2F"
    assert mask("redis://:pw@127.0.0.1:6379/0") == "redis://:***@127.0.0.1:6379/0"
    assert mask("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    # a URL no parser takes, and a password given as a query parameter
    assert mask("redis://:s3cret@[::1/0") == "redis://:***@[::1/0"
    assert mask("redis://user:p@ss@localhost:6379/0") == "redis://user:***@localhost:6379/0"
    assert mask("redis://127.0.0.1:6379/0?x=a@b") == "redis://127.0.0.1:6379/0?x=a@b"
    assert (mask("postgresql://u@127.0.0.1:1/db?sslmode=off&password=s3cret")
            == "postgresql://u@127.0.0.1:1/db?sslmode=off&password=***")


def test_a_url_no_parser_takes_is_one_line_without_its_password():
    problem = Redis.probe("redis://:s3cret@[::1/0")
    assert problem.startswith("malformed URL") and "s3cret" not in problem


def test_a_redis_url_is_refused_for_what_the_libraries_would_fail_on():
    assert "database of a redis URL is a number" in Redis.probe("redis://127.0.0.1:1/abc")
    assert "query parameters are not supported" in Redis.probe("redis://127.0.0.1:1/0?foo=1")


def test_a_server_that_is_not_redis_is_named_in_one_line(tmp_path):
    port = free_port()
    server = subprocess.Popen(["python3", "-m", "http.server", str(port), "--bind",
                               "127.0.0.1"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            problem = Redis.probe(f"redis://:pw@127.0.0.1:{port}/0")
            if "cannot reach" not in problem:
                break
            time.sleep(0.05)
        assert problem.startswith("no Redis server at redis://:***@")
        assert "\n" not in problem
    finally:
        server.terminate()
        server.wait(10)


def test_refused_port_is_reported_fast():
    port = free_port()
    began = time.monotonic()
    assert "cannot reach redis" in Redis.probe(f"redis://127.0.0.1:{port}/0")
    assert "cannot reach amqp" in RabbitMQ.probe(f"amqp://u:p@127.0.0.1:{port}/")
    assert time.monotonic() - began < 5


def test_wrong_scheme():
    assert "not a redis:// URL" in Redis.probe("http://127.0.0.1/")
    assert "not an amqp:// URL" in RabbitMQ.probe("redis://127.0.0.1:6379/0")


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
            if "cannot reach" not in (Redis.probe(f"redis://127.0.0.1:{port}/0") or ""):
                break
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def test_redis_password_checks(password_redis):
    port = password_redis
    assert "needs a password" in Redis.probe(f"redis://127.0.0.1:{port}/0")
    wrong = Redis.probe(f"redis://:nope@127.0.0.1:{port}/0")
    assert "refused the credentials" in wrong and "nope" not in wrong
    assert Redis.probe(f"redis://:sesame@127.0.0.1:{port}/0") is None
    assert Redis.probe(f"redis://:sesame@127.0.0.1:{port}/15") is None
    missing = Redis.probe(f"redis://:sesame@127.0.0.1:{port}/99")
    assert "refused database 99" in missing and "sesame" not in missing
