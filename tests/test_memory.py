"""The memory scenario: broker readings on real queues of known size (harness-owned Redis
and RabbitMQ), three samples per reading, the zero-job control, --memory-jobs."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from typing import Any

import pandas as pd
import pytest

from adapters import BACKENDS
from core.brokers import rabbitmq_memory
from core.brokers.rabbitmq import RabbitMQ
from core.brokers.redis import Redis, RedisSession
from core.protocol import DriverReport, PhaseReport
from harness.cli import build_parser
from harness.memprobe import sample_memory
from scenarios.base import RunOptions
from scenarios.memory import CONTROL_OPTION, MEMORY
from tests.conftest import REPO, broker_url, require_env

JOBS, PAYLOAD = 1000, 1024


def test_redis_reads_the_keys_named_after_the_queue(brokers) -> None:
    """MEMORY USAGE covers the queue's keys (a list and a per-job hash) and no other key;
    used_memory grows by at least as much."""
    url = broker_url(brokers, "redis")
    queue = "qbtestredis"
    before = Redis.memory(url, None, queue)
    with RedisSession(url, 5.0) as session:
        session.pipeline([("RPUSH", queue, os.urandom(PAYLOAD)) for _ in range(JOBS)])
        session.call("HSET", f"job:{queue}:1", "body", os.urandom(PAYLOAD))
        session.call("SET", "someone-else", os.urandom(100 * PAYLOAD))
        after = Redis.memory(url, None, queue)
        session.call("DEL", queue, f"job:{queue}:1", "someone-else")
    assert before["queue_bytes"] == 0 and before["queue_keys"] == 0
    assert after["queue_keys"] == 2
    grown = after["queue_bytes"] - before["queue_bytes"]
    assert (JOBS + 1) * PAYLOAD < grown < (JOBS + 1) * (PAYLOAD + 256), after
    assert after["bytes"] - before["bytes"] >= grown + 100 * PAYLOAD


def publish(url: str, queue: str, count: int, size: int, persistent: bool) -> None:
    """`count` messages of `size` bytes into a durable queue, through pika."""
    python = require_env(BACKENDS["amqp-raw"].family)
    code = (
        "import pika, sys\n"
        "conn = pika.BlockingConnection(pika.URLParameters(sys.argv[1]))\n"
        "channel = conn.channel()\n"
        "channel.queue_declare(sys.argv[2], durable=True)\n"
        "props = pika.BasicProperties(delivery_mode=int(sys.argv[5]))\n"
        "for _ in range(int(sys.argv[3])):\n"
        "    channel.basic_publish('', sys.argv[2], b'x' * int(sys.argv[4]), props)\n"
        "conn.close()\n")
    subprocess.run([str(python), "-c", code, url, queue, str(count), str(size),
                    "2" if persistent else "1"], check=True, timeout=60, cwd=REPO)


def test_rabbitmq_reads_the_queues_named_after_the_queue(brokers) -> None:
    """list_queues: the messages of <queue> and <queue>.DQ, their bytes in RAM, the
    persistent ones' bytes apart; a queue named otherwise is left out."""
    url, control = broker_url(brokers, "amqp"), brokers.control("amqp")
    queue = "qbtestrabbit"
    before = RabbitMQ.memory(url, control, queue)
    publish(url, queue, JOBS, PAYLOAD, persistent=True)
    publish(url, f"{queue}.DQ", 10, PAYLOAD, persistent=False)
    publish(url, "someone-else", 10, PAYLOAD, persistent=True)
    after = RabbitMQ.memory(url, control, queue)
    assert before["queue_bytes"] == 0 and before["queue_messages"] == 0
    assert after["queue_messages"] == JOBS + 10 and after["queue_count"] == 2
    assert after["disk_bytes"] == JOBS * PAYLOAD  # the transient ones are not on disk
    assert after["queue_bytes"] >= (JOBS + 10) * PAYLOAD
    # the whole VM's total is read too, but 1 MB of messages is within its own churn
    # (the other queues, the GC): only that it is there is certain
    assert after["bytes"] > 0 and before["bytes"] > 0
    assert after["method"].startswith("erl_call:")  # erlang-base ships it with the server


def test_without_erl_call_rabbitmqctl_reads_the_same_figures(brokers, monkeypatch) -> None:
    url, control = broker_url(brokers, "amqp"), brokers.control("amqp")
    queue = "qbtestfallback"
    publish(url, queue, 50, PAYLOAD, persistent=True)
    fast = RabbitMQ.memory(url, control, queue)
    monkeypatch.setattr(rabbitmq_memory, "erl_call_binary", lambda: None)
    slow = RabbitMQ.memory(url, control, queue)
    assert slow["method"].startswith("rabbitmqctl eval:"), slow
    for key in ("queue_messages", "queue_count", "disk_bytes"):
        assert slow[key] == fast[key], (slow, fast)


@pytest.mark.parametrize(("answer", "figure"), [
    ("", "bytes"), ("nonsense;", "bytes"), ("5000;qbp 3 undefined 1 1;", "queue_bytes")])
def test_an_answer_the_harness_cannot_read_gives_no_figure_and_says_why(answer: str,
                                                                       figure: str) -> None:
    got = rabbitmq_memory.parse(answer, "qbp")
    assert got[figure] is None and got["unreadable"]


def test_a_quorum_queue_reading_says_it_has_no_message_bytes() -> None:
    got = rabbitmq_memory.parse("5000;qbq 3 900 '' '';qbq.other 1 100 0 0;", "qbq")
    assert got["bytes"] == 5000 and "queue_bytes" not in got
    assert got["queue_method"].startswith("a quorum queue")
    plain = rabbitmq_memory.parse("5000;qbp 3 900 30 30;qbp.DQ 1 100 10 0;x 9 9 9 9;", "qbp")
    assert plain == {"bytes": 5000, "queue_bytes": 1040, "disk_bytes": 30,
                     "queue_messages": 4, "queue_count": 2}


def test_a_reading_is_the_median_of_three_samples(brokers) -> None:
    url = broker_url(brokers, "redis")
    queue = "qbtestsamples"
    with RedisSession(url, 5.0) as session:
        session.pipeline([("RPUSH", queue, os.urandom(PAYLOAD)) for _ in range(10)])
        reading = sample_memory({"broker_url": url, "queue": queue}, 3, final=True)
        session.call("DEL", queue)
    assert set(reading["samples"]) == {"bytes", "queue_bytes"}
    for name, values in reading["samples"].items():
        assert len(values) == 3
        assert reading[name] == sorted(values)[1]
    assert reading["queue_bytes"] > 10 * PAYLOAD


def test_the_in_process_heap_is_sampled_three_times() -> None:
    before = sample_memory({}, 3)
    held = [bytearray(PAYLOAD) for _ in range(JOBS)]
    after = sample_memory({}, 3, final=True)
    assert len(before["samples"]["bytes"]) == len(after["samples"]["bytes"]) == 3
    assert after["bytes"] - before["bytes"] >= JOBS * PAYLOAD
    del held


# -- planning and analysis ------------------------------------------------------------------
def fill_report(before: dict[str, Any], after: dict[str, Any]) -> DriverReport:
    return DriverReport(phases=[PhaseReport(type="fill", first_id=0, memory_before=before,
                                            memory_after=after)])


def reading(total: int, queue: int) -> dict[str, Any]:
    return {"bytes": total, "method": "redis INFO used_memory", "queue_bytes": queue,
            "queue_method": "redis MEMORY USAGE", "samples": {"bytes": [total] * 3}}


def test_the_control_runs_first_and_its_deltas_reach_the_other_cells() -> None:
    control, cell = MEMORY.plan("redis-raw", RunOptions(quick=True))
    assert control.params == {"jobs": 0, "control": True}
    assert control.workload["phases"][0]["jobs"] == 0
    got = MEMORY.analyze(control, pd.DataFrame(), fill_report(reading(1000, 0), reading(1500, 40)))
    assert got["bytes_per_job"] is None and got["queue_bytes"] == 40
    finished = [{"scenario": "memory", "backend": "redis-raw", "round": 1,
                 "profile": "default", "params": control.params, "status": "ok",
                 "metrics": got}]
    resolved = MEMORY.resolve(cell, finished, 1)
    assert resolved.options[CONTROL_OPTION] == {"queue_bytes": 40, "broker_bytes": 500}
    jobs = cell.params["jobs"]
    metrics = MEMORY.analyze(resolved, pd.DataFrame(), fill_report(reading(1000, 0),
                                                         reading(1000 + 3000 * jobs, 2000 * jobs)))
    assert metrics["bytes_per_job"] == 2000  # the queue's keys, nothing subtracted
    assert metrics["broker_bytes_per_job"] == 3000
    assert metrics["control"] == {"queue_bytes": 40, "broker_bytes": 500}
    assert "median of 1 sample" in metrics["measured"]  # quick: one reading each
    assert [c.workload["phases"][0]["samples"]
            for c in MEMORY.plan("redis-raw", RunOptions())] == [3, 3, 3]
    # another round's control is not this round's
    assert CONTROL_OPTION not in MEMORY.resolve(cell, finished, 2).options


def test_memory_jobs_are_parsed_and_capped_by_the_budget() -> None:
    args = build_parser().parse_args(["run", "--scenario", "memory",
                                      "--memory-jobs", "1000,100000,1000"])
    assert args.memory_jobs == (1000, 100_000)
    cells = MEMORY.plan("redis-raw", RunOptions(quick=True, memory_jobs=args.memory_jobs,
                                                payload_sizes=(1024,)))
    budget = MEMORY.grids.quick.budget_mib
    assert [c.params for c in cells[1:]] == [
        {"payload_bytes": 1024, "jobs": 1000},
        {"payload_bytes": 1024, "jobs": budget * 1024, "jobs_asked": 100_000,
         "capped_by_budget_mib": budget}]
    assert cells[2].workload["phases"][0]["jobs"] == budget * 1024
    full = MEMORY.plan("redis-raw", RunOptions(memory_jobs=(100_000,),
                                               payload_sizes=(64, 16 * 1024)))
    assert [c.params["jobs"] for c in full[1:]] == [100_000, 100_000]  # within the budget


def test_bad_memory_jobs_is_one_line(capsys) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--memory-jobs", "0"])
    assert "job count must be from 1" in capsys.readouterr().err


def test_a_figure_within_the_controls_drift_is_noisy_and_a_broker_total_says_so() -> None:
    _control, cell = MEMORY.plan("redis-raw", RunOptions(quick=True))
    jobs = cell.params["jobs"]

    def analyzed(control: dict, before: dict, after: dict) -> dict:
        plan = dataclasses.replace(cell, options={**cell.options, CONTROL_OPTION: control})
        return MEMORY.analyze(plan, pd.DataFrame(), fill_report(before, after))

    quiet = analyzed({"queue_bytes": 40, "broker_bytes": 500},
                     reading(1000, 0), reading(1000 + 3000 * jobs, 2000 * jobs))
    assert not quiet["noisy"] and not quiet["whole_broker"]
    drifting = analyzed({"queue_bytes": -1000 * jobs, "broker_bytes": 0},
                        reading(1000, 0), reading(1000 + 3000 * jobs, 2000 * jobs))
    assert drifting["noisy"]
    total = {"bytes": 1000, "method": "erl_call: erlang:memory(total)",
             "samples": {"bytes": [1000] * 3}}
    vm = analyzed({"queue_bytes": None, "broker_bytes": 10},
                  total, {**total, "bytes": 1000 + 1500 * jobs})
    assert vm["whole_broker"] and vm["bytes_per_job"] == 1500 and not vm["noisy"]
