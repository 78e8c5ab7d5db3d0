"""Bare drain loops, no harness code: `python -m harness.ceiling_bare BROKER URL N CONSUMERS`.

Runs in the backend's environment (.venvs/redis, .venvs/amqp or .venvs/pg).
Preloads N small messages, forks CONSUMERS processes that drain them with a plain
redis-py (hiredis) batched RPOP loop, a plain pika prefetch + multiple-ack
loop or a plain psycopg 3 loop of batched DELETE ... FOR UPDATE SKIP LOCKED
RETURNING claims, and prints {"jobs_per_s": ...} as JSON. Each message is decoded
(json.loads), the least work a consumer does with a job; nothing else runs.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import sys
import time
from typing import Any

QUEUE = "qb-bare"
BATCH = 64
PREFETCH = 4
MESSAGE = b'{"id": 1, "sent": 0, "spec": {"kind": "noop", "ms": 0}, "p": ""}'


def redis_fill(url: str, n: int) -> None:
    import redis
    client = redis.Redis.from_url(url)
    client.delete(QUEUE)
    pipe = client.pipeline(transaction=False)
    for _ in range(n):
        pipe.lpush(QUEUE, MESSAGE)
    pipe.execute()


def redis_drain(url: str, n: int, consumers: int, go: mp.Event) -> None:
    import redis
    client = redis.Redis.from_url(url)
    go.wait()
    while batch := client.rpop(QUEUE, BATCH):
        for raw in batch:
            json.loads(raw)


def amqp_fill(url: str, n: int) -> None:
    import pika
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_declare(QUEUE, durable=True)
    channel.queue_purge(QUEUE)
    persistent = pika.BasicProperties(delivery_mode=2)
    for _ in range(n):
        channel.basic_publish("", QUEUE, MESSAGE, persistent)
    connection.close()


def amqp_drain(url: str, n: int, consumers: int, go: mp.Event) -> None:
    import pika
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=PREFETCH)
    go.wait()
    count = 0
    for method, _props, body in channel.consume(QUEUE, inactivity_timeout=0.2):
        if method is None:
            break
        json.loads(body)
        count += 1
        if count % 2 == 0:
            channel.basic_ack(method.delivery_tag, multiple=True)
    connection.close()  # unacked leftovers: none matter, the queue is drained


# pg-raw's default claim without its fair share: a preloaded queue fills every batch.
PG_TABLE = """CREATE TABLE {table} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                                    body bytea NOT NULL)"""
PG_FILL = "INSERT INTO {table} (body) SELECT %b FROM generate_series(1, %s)"
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
        conn.execute(pg_statement(PG_FILL), [MESSAGE, n])
        conn.execute(pg_statement("VACUUM ANALYZE {table}"))


def pg_drain(url: str, n: int, consumers: int, go: mp.Event) -> None:
    import psycopg
    with psycopg.connect(url, autocommit=True) as conn:
        claim = pg_statement(PG_CLAIM)
        go.wait()
        while batch := conn.execute(claim, [BATCH], binary=True).fetchall():
            for _id, body in batch:
                json.loads(body)


LOOPS = {"redis": (redis_fill, redis_drain), "amqp": (amqp_fill, amqp_drain),
         "postgres": (pg_fill, pg_drain)}


def drain(broker: str, url: str, n: int, consumers: int) -> dict[str, float]:
    """Jobs/s of `consumers` processes draining `n` preloaded messages, with the drain's
    monotonic start and end (ns), which the speed meter's samples are matched to."""
    fill, body = LOOPS[broker]
    fill(url, n)
    go = mp.Event()
    workers = [mp.Process(target=body, args=(url, n, consumers, go)) for _ in range(consumers)]
    for worker in workers:
        worker.start()
    time.sleep(0.5)  # connected
    start = time.monotonic_ns()
    go.set()
    for worker in workers:
        worker.join()
    idle_ns = 200_000_000 if broker == "amqp" else 0  # the inactivity timeout ending pika's
    end = time.monotonic_ns() - idle_ns
    return {"jobs_per_s": n / ((end - start) / 1e9), "start_ns": start, "end_ns": end}


if __name__ == "__main__":
    kind, broker_url, jobs, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    print(json.dumps(drain(kind, broker_url, jobs, count)))
