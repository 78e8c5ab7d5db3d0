"""amqp-raw's acks on a real RabbitMQ (adapters/amqp_raw/worker.py `Acks`): jobs that end
out of order, as in job threads, are each acked once, none twice (RabbitMQ closes the
channel on an unknown tag) and none left out (it would come back once the connection
closes)."""

from __future__ import annotations

import json
import os
import subprocess

from adapters import BACKENDS
from core.envnames import BROKER_URL_ENV
from tests.conftest import REPO, broker_url, require_env


def test_out_of_order_ends_ack_every_job_once(brokers):
    url = broker_url(brokers, "amqp")
    assert url is not None
    python = require_env(BACKENDS["amqp-raw"].family)
    done = subprocess.run([str(python), str(REPO / "tests" / "amqp_acks_probe.py"),
                           "qb-acks-probe"], capture_output=True, text=True, timeout=120,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO),
                                         BROKER_URL_ENV: url})
    assert done.returncode == 0, done.stderr[-2000:]
    outcome = json.loads(done.stdout.splitlines()[-1])
    assert outcome == {"open": True, "left": 0, "delivered": 6}
