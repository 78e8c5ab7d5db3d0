"""Runs inside the pg environment for the pg-raw claim test.

    python -m tests.pg_claim_probe POSTGRES_URL

Creates a pg-raw queue table, then claims as one of 8 consumers while rows are
added and removed around it (and the time of its last full claim is set), and
prints the size of each claim as JSON.
"""

from __future__ import annotations

import json
import sys
import time

import psycopg
from psycopg import sql

from adapters.pg_raw.adapter import SCHEMA
from adapters.pg_raw.worker import FRESH_S, Consumer, statement

QUEUE = "qb-claim-probe"
CONSUMERS = 8


def main() -> None:
    url = sys.argv[1]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(QUEUE)))
        conn.execute(sql.SQL(SCHEMA).format(table=sql.Identifier(QUEUE),
                                            unclaimed=sql.Identifier(f"{QUEUE}_unclaimed"),
                                            notify=sql.Identifier(f"{QUEUE}_notify")))

        def add(rows: int) -> None:
            conn.execute(statement("INSERT INTO {table} (body) SELECT 'x'::bytea "
                                   "FROM generate_series(1, %s)", QUEUE), [rows])

        consumer = Consumer(url, QUEUE, reliable=False, consumers=CONSUMERS)
        sizes = []

        def after_full_claim(seconds_ago: float) -> None:
            """Leave 10 rows, claimed as if a full claim had come back `seconds_ago`."""
            add(1000)
            sizes.append(len(consumer.claim_batch()))  # a long queue: a full batch
            conn.execute(statement("DELETE FROM {table} WHERE id NOT IN (SELECT id FROM "
                                   "{table} ORDER BY id DESC LIMIT 10)", QUEUE))
            assert consumer.full_at is not None
            consumer.full_at = time.monotonic() - seconds_ago
            sizes.append(len(consumer.claim_batch()))

        add(16)
        sizes.append(len(consumer.claim_batch()))  # a short queue: a fair share
        after_full_claim(0.0)  # right after a full claim: no share computed
        add(16)
        sizes.append(len(consumer.claim_batch()))  # after a short claim: a share again
        after_full_claim(FRESH_S)  # long jobs ran since the full claim: a share again
        consumer.conn.close()
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(QUEUE)))
    print(json.dumps(sizes))


if __name__ == "__main__":
    main()
