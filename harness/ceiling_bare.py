"""Bare drain loops, no harness code:
`python -m harness.ceiling_bare BROKER URL N CONSUMERS [fork|exec]`.

Runs in the backend's environment (.venvs/redis, .venvs/amqp or .venvs/pg).
Preloads N small messages (distinct jobs in the ceilings' format), starts CONSUMERS
processes that drain them with a plain redis-py (hiredis) batched RPOP loop, a plain
pika prefetch loop (the deliveries
already buffered taken together, then one multiple-ack) or a plain psycopg 3 loop
of batched DELETE ... FOR UPDATE SKIP LOCKED RETURNING claims, and prints
{"jobs_per_s": ...} as JSON. Each message is decoded (json.loads), the least work a
consumer does with a job; nothing else runs.

The consumers are forked from this process (`fork`, the default: they share its
pages, the client library already imported) or each started as a new interpreter
(`exec`, `python -m harness.ceiling_bare consume BROKER URL`), as the harness
starts every worker process. The self-test times both (harness/ceiling_check.py),
so the part of a ceiling's gap that is the start method is told from the part
that is the harness's code.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

QUEUE = "qb-bare"
BATCH = 64
PREFETCH = 4  # per slot, as amqp-raw: a consumer's prefetch is this x its slots
PREFETCH_ENV = "QB_BARE_PREFETCH"  # a pika consumer's prefetch (default PREFETCH)
SETTING_ENV = {"prefetch": PREFETCH_ENV}  # a loop's settings, as its consumers get them
ACK_EVERY = 2
START_METHODS = ("fork", "exec")
CONSUME = "consume"  # the command line of one exec'd consumer
READY = b"connected\n"
GO = b"go\n"
CONNECT_TIMEOUT_S = 30.0
# Each message is a distinct job, as in the ceilings' queues (adapters/raw_message.py
# encode): with one constant message the bare RabbitMQ loop drained about 1.4x faster
# than with distinct ones (docs/methodology.md, "The bare loop's messages").
MESSAGE = '{"id": %d, "sent": 0, "spec": {"kind": "noop", "ms": 0}, "p": ""}'


def message(number: int) -> bytes:
    """The `number`th preloaded message."""
    return (MESSAGE % number).encode()


def redis_fill(url: str, n: int) -> None:
    import redis
    client = redis.Redis.from_url(url)
    client.delete(QUEUE)
    pipe = client.pipeline(transaction=False)
    for number in range(n):
        pipe.lpush(QUEUE, message(number))
    pipe.execute()


def redis_drain(url: str, go: Callable[[], Any]) -> int:
    import redis
    client = redis.Redis.from_url(url)
    client.ping()  # connected before the go: from_url connects lazily
    go()
    last_ns = 0
    while batch := client.rpop(QUEUE, BATCH):
        for raw in batch:
            json.loads(raw)
        last_ns = time.monotonic_ns()
    return last_ns


def amqp_fill(url: str, n: int) -> None:
    import pika
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_declare(QUEUE, durable=True)
    channel.queue_purge(QUEUE)
    persistent = pika.BasicProperties(delivery_mode=2)
    for number in range(n):
        channel.basic_publish("", QUEUE, message(number), persistent)
    connection.close()


def amqp_drain(url: str, go: Callable[[], Any]) -> int:
    import pika
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=int(os.environ.get(PREFETCH_ENV, PREFETCH)))
    go()
    last_ns, tag, unacked = 0, 0, 0
    deliveries = channel.consume(QUEUE, inactivity_timeout=0.2)
    for method, _props, body in deliveries:
        if method is None:
            break
        json.loads(body)
        tag, unacked = method.delivery_tag, unacked + 1
        while channel.get_waiting_message_count():  # the rest of what the broker sent
            method, _props, body = next(deliveries)
            json.loads(body)
            tag, unacked = method.delivery_tag, unacked + 1
        last_ns = time.monotonic_ns()
        if unacked >= ACK_EVERY:
            channel.basic_ack(tag, multiple=True)
            unacked = 0
    if unacked:  # acked, or the broker would deliver it again to a consumer still waiting
        channel.basic_ack(tag, multiple=True)
    connection.close()
    return last_ns


# pg-raw's default claim without its fair share: a preloaded queue fills every batch.
PG_TABLE = """CREATE TABLE {table} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                                    body bytea NOT NULL)"""
PG_FILL = ("INSERT INTO {table} (body) SELECT convert_to(format(%s, g), 'UTF8') "
           "FROM generate_series(1, %s) AS g")
PG_CLAIM = ("DELETE FROM {table} WHERE id = ANY(ARRAY(SELECT id FROM {table} ORDER BY id "
            "LIMIT %s FOR UPDATE SKIP LOCKED)) RETURNING id, body")


def pg_statement(template: str) -> Any:
    from psycopg import sql
    return sql.SQL(template).format(table=sql.Identifier(QUEUE))


def pg_fill(url: str, n: int) -> None:
    import psycopg
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(pg_statement("DROP TABLE IF EXISTS {table}"))
        conn.execute(pg_statement(PG_TABLE))
        conn.execute(pg_statement(PG_FILL), [MESSAGE.replace("%d", "%s"), n])
        conn.execute(pg_statement("VACUUM ANALYZE {table}"))


def pg_drain(url: str, go: Callable[[], Any]) -> int:
    import psycopg
    last_ns = 0
    with psycopg.connect(url, autocommit=True) as conn:
        claim = pg_statement(PG_CLAIM)
        go()
        while batch := conn.execute(claim, [BATCH], binary=True).fetchall():
            for _id, body in batch:
                json.loads(body)
            last_ns = time.monotonic_ns()
    return last_ns


LOOPS = {"redis": (redis_fill, redis_drain), "amqp": (amqp_fill, amqp_drain),
         "postgres": (pg_fill, pg_drain)}


Body = Callable[[str, Callable[[], Any]], int]  # (url, wait for go) -> its last job's ns


class BareLoopError(RuntimeError):
    """A bare consumer failed: the drain has no figure."""


def forked(body: Body, url: str, consumers: int) -> tuple[int, int, float]:
    """Fork the consumers; (start, end) monotonic ns of their drain: from the go, once
    each has connected, to the last job any of them decoded; and the CPU seconds they
    used from the go to their loop's end."""
    from core.procs import die_with_parent
    context = mp.get_context("fork")
    connected, go = context.Semaphore(0), context.Event()
    last = context.Array("q", consumers, lock=False)
    cpu = context.Array("d", consumers, lock=False)

    def consumer(index: int) -> None:
        die_with_parent()
        began = 0.0

        def ready() -> None:
            nonlocal began
            connected.release()
            go.wait()
            began = time.process_time()

        last[index] = body(url, ready)
        cpu[index] = time.process_time() - began

    workers = [context.Process(target=consumer, args=(i,), daemon=True)
               for i in range(consumers)]
    try:
        for worker in workers:
            worker.start()
        for _ in workers:
            if not connected.acquire(timeout=CONNECT_TIMEOUT_S):
                raise BareLoopError("a bare consumer did not connect")
        start = time.monotonic_ns()
        go.set()
        for worker in workers:
            worker.join()
        if any(worker.exitcode for worker in workers):
            raise BareLoopError("a bare consumer failed (see its traceback above)")
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.kill()
                worker.join()
    return start, max(last), sum(cpu)


def executed(broker: str, url: str, consumers: int) -> tuple[int, int, float]:
    """Start each consumer as a new interpreter; (start, end) monotonic ns of their
    drain and their CPU seconds, as forked() gives them (not the interpreters' exits).
    Each consumer dies with this process, as forked ones do."""
    from core.procs import die_with_parent  # here: an exec'd consumer imports no more
    workers: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(consumers):
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "harness.ceiling_bare", CONSUME, broker, url],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, preexec_fn=die_with_parent))
        for worker in workers:
            assert worker.stdout is not None
            if worker.stdout.readline() != READY:
                raise BareLoopError(f"a bare {broker} consumer did not connect")
        start = time.monotonic_ns()
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write(GO)
            worker.stdin.close()
        ends, cpu = [], 0.0
        for worker in workers:
            assert worker.stdout is not None
            line = worker.stdout.readline()
            if worker.wait() or len(line.split()) != 2:
                raise BareLoopError(f"a bare {broker} consumer failed (see its traceback "
                                    f"above)")
            ends.append(int(line.split()[0]))
            cpu += float(line.split()[1])
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
            worker.wait()
            for pipe in (worker.stdin, worker.stdout):
                if pipe is not None:
                    pipe.close()
    return start, max(ends), cpu


def consume(broker: str, url: str) -> None:
    """One exec'd consumer: connect, say so, drain once the parent says go, then print
    the monotonic ns of its last job and the CPU seconds it used since the go."""
    began = 0.0

    def go() -> None:
        nonlocal began
        sys.stdout.buffer.write(READY)
        sys.stdout.flush()
        if sys.stdin.buffer.readline() != GO:
            sys.exit(1)  # the parent closed our stdin: no drain
        began = time.process_time()
    last_ns = LOOPS[broker][1](url, go)
    print(last_ns, time.process_time() - began, flush=True)


def drain(broker: str, url: str, n: int, consumers: int, start_method: str = "fork"
          ) -> dict[str, float]:
    """Jobs/s of `consumers` processes draining `n` preloaded messages, with the drain's
    monotonic start and end (ns): from the go to the last job decoded, which the speed
    meter's samples are matched to; and the consumers' CPU time per job (us)."""
    if start_method not in START_METHODS:
        raise ValueError(f"unknown start method {start_method!r} (valid: "
                         f"{', '.join(START_METHODS)})")
    fill, body = LOOPS[broker]
    fill(url, n)
    if start_method == "fork":
        start, end, cpu_s = forked(body, url, consumers)
    else:
        start, end, cpu_s = executed(broker, url, consumers)
    if end <= start:
        raise BareLoopError(f"no bare {broker} consumer decoded a job")
    return {"jobs_per_s": n / ((end - start) / 1e9), "start_ns": start, "end_ns": end,
            "cpu_us_per_job": cpu_s * 1e6 / n}


if __name__ == "__main__":
    if sys.argv[1] == CONSUME:
        consume(sys.argv[2], sys.argv[3])
    else:
        kind, broker_url, jobs, count = (sys.argv[1], sys.argv[2], int(sys.argv[3]),
                                         int(sys.argv[4]))
        method = sys.argv[5] if len(sys.argv) > 5 else START_METHODS[0]
        try:
            print(json.dumps(drain(kind, broker_url, jobs, count, method)))
        except (BareLoopError, ValueError) as exc:
            sys.exit(f"bare loop: {exc}")
