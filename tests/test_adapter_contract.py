"""The contract every backend must pass, present and future.

200 jobs, each started and ended exactly once; worker PIDs alive while
running and none left after stop; a job that raises is an ERROR record.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from adapters import BACKENDS
from adapters.base import RequiredSettings
from core.recorder import Event
from scenarios.records import load_records
from tests.conftest import REPO, broker_url, require_env

pytestmark = pytest.mark.slow


# `make test` checks one backend of each broker kind and of each worker model (in-process,
# forked consumers, a pool, a work horse); `make test-extended` checks the others too.
IN_MAKE_TEST = ("asyncio", "redis-raw", "pg-raw", "celery-rabbitmq", "rq", "dramatiq-redis")


@pytest.mark.parametrize("backend", [
    name if name in IN_MAKE_TEST else pytest.param(name, marks=pytest.mark.extended)
    for name in BACKENDS])
def test_adapter_contract(backend, brokers, tmp_path):
    info = BACKENDS[backend]
    python = require_env(info.family)
    url = broker_url(brokers, info.broker) or ""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([str(python), str(REPO / "tests" / "contract_probe.py"), backend, url,
                           str(tmp_path)], capture_output=True, text=True, timeout=180, env=env,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["pids_running"], "adapter reported no worker pids"
    assert report["pids_alive_while_running"]
    assert report["pids_left_after_stop"] == []
    assert report["pids_reported_after_stop"] == []
    missing = set(RequiredSettings.__annotations__) - set(report["settings"])
    assert not missing, f"settings lack the required keys {sorted(missing)}"

    records = load_records(tmp_path / "cells" / "0000-contract" / "records")
    starts = records[records.event == int(Event.START)].groupby("job_id").size()
    ends = records[records.event == int(Event.END)].groupby("job_id").size()
    errors = records[records.event == int(Event.ERROR)]
    assert sorted(ends.index) == list(range(200)), "some jobs never ended"
    assert (ends == 1).all(), f"jobs ended twice: {list(ends[ends > 1].index)[:10]}"
    assert (starts.drop(200, errors="ignore") == 1).all(), "some jobs started twice"
    assert list(errors.job_id.unique()) == [200], "the failing job was not reported as an error"
