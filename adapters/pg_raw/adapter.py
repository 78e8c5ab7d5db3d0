"""pg-raw: the ceiling a Python client gets from PostgreSQL.

The producer INSERTs a small JSON message per job (one INSERT ... SELECT
unnest(...) per batch) into a table named after the queue, whose statement
trigger NOTIFYs the waiting consumers. `slots` consumer threads over a few
processes (adapters/raw_consumers.py, adapters/pg_raw/worker.py) claim
batches with `FOR UPDATE SKIP LOCKED` and run bench_job one job at a time
each. Server durability stays at PostgreSQL's defaults (fsync and
synchronous_commit on), as the libraries run against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from adapters.base import (
    STATISTICS_AFTER_FILL,
    AdapterConfig,
    JobCall,
    RequiredSettings,
    results_unsupported,
)
from adapters.pg_raw.worker import (
    BATCH,
    FRESH_S,
    READY_LINE,
    WAIT_S,
    statement,
)
from adapters.raw_consumers import consumer_env, layout, layout_source
from adapters.raw_message import ACK_FLUSH_S, NO_RETURN_STORE, encode
from adapters.workers import WorkerGroup, WorkerProcessAdapter, python_module, worker_env

# One statement trigger per table: a NOTIFY on the table's name for every INSERT. Large
# bodies are stored out of line without compression (STORAGE EXTERNAL): the payloads are
# incompressible, and pglz failing on each 1 MiB body made INSERTs about 5x slower.
SCHEMA = """
SELECT pg_advisory_xact_lock(hashtext('queuebench pg-raw schema'));
CREATE TABLE IF NOT EXISTS {table} (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner integer,
    body bytea NOT NULL);
ALTER TABLE {table} ALTER COLUMN body SET STORAGE EXTERNAL;
CREATE INDEX IF NOT EXISTS {unclaimed} ON {table} (id) WHERE owner IS NULL;
CREATE OR REPLACE FUNCTION qb_raw_notify() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN PERFORM pg_notify(TG_TABLE_NAME, ''); RETURN NULL; END $$;
CREATE OR REPLACE TRIGGER {notify} AFTER INSERT ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION qb_raw_notify();
"""
# %b: bytea travels in binary (a text-format bytea[] of 1 MiB values takes seconds to parse)
INSERT = "INSERT INTO {table} (body) VALUES (%b)"
INSERT_MANY = "INSERT INTO {table} (body) SELECT unnest(%b::bytea[])"


class PgRawAdapter(WorkerProcessAdapter):
    bulk_api = True  # one INSERT ... SELECT unnest(array) per batch

    def __init__(self, config: AdapterConfig) -> None:
        super().__init__(config)
        if not config.broker_url:
            raise ValueError("pg-raw needs a PostgreSQL broker URL")
        self.conn = psycopg.connect(config.broker_url, autocommit=True)
        self._create_table()
        self.insert_one = statement(INSERT, config.queue)
        self.insert_many = statement(INSERT_MANY, config.queue)
        self.processes, self.threads = layout(config)
        env = worker_env(config.records_dir, consumer_env(config, self.threads))
        self.workers = WorkerGroup("pg-raw", config.log_dir, env)

    def _create_table(self) -> None:
        """The queue's table, index and trigger (once; producers may race to it)."""
        queue = self.config.queue
        ddl = sql.SQL(SCHEMA).format(table=sql.Identifier(queue),
                                     unclaimed=sql.Identifier(f"{queue}_unclaimed"),
                                     notify=sql.Identifier(f"{queue}_notify"))
        with self.conn.transaction():
            self.conn.execute(ddl)

    def required_settings(self) -> RequiredSettings:
        reliable = self.config.profile == "reliable"
        return {"processes": self.processes, "concurrency_per_process": self.threads,
                "pool": "consumer threads, one job at a time each",
                "prefetch": BATCH * self.config.slots,
                "acks": "a batched DELETE of the marked rows after their jobs" if reliable
                else "none: the claim deletes the rows",
                "results": results_unsupported(self.config.results, NO_RETURN_STORE),
                "enqueue": "INSERT per job; one INSERT ... SELECT unnest(array) per batch"}

    def extra_settings(self) -> dict[str, Any]:
        reliable = self.config.profile == "reliable"
        how = "UPDATE ... SET owner = pid" if reliable else "DELETE ... RETURNING"
        return {"fetch": f"{how} WHERE id = ANY(ARRAY(SELECT ... ORDER BY id LIMIT n FOR "
                         f"UPDATE SKIP LOCKED)), n = {BATCH} within {FRESH_S} s of a full claim, "
                         f"else at most {BATCH} and a fair share of the queue; LISTEN/NOTIFY "
                         f"(statement trigger) when it is empty",
                "fetch_batch": BATCH, "idle_wait_s": WAIT_S,
                "ack_flush_s": ACK_FLUSH_S if reliable else None,
                "transactions": "autocommit: one per claim, per INSERT and per ack batch",
                "statistics": STATISTICS_AFTER_FILL,
                "body_storage": "EXTERNAL (TOAST without compression)",
                "server_durability": "PostgreSQL defaults: fsync on, synchronous_commit on",
                "driver": f"psycopg {psycopg.__version__} ({psycopg.pq.__impl__})",
                "processes_from": layout_source(self.config)}

    def purge(self) -> None:
        self.conn.execute(statement("TRUNCATE {table}", self.config.queue))

    def backlog_filled(self) -> None:
        self.conn.execute(statement("ANALYZE {table}", self.config.queue))

    def start_workers(self) -> None:
        self.workers.start(python_module("adapters.pg_raw.worker"), self.processes,
                           ready=READY_LINE)

    def enqueue(self, job: JobCall) -> None:
        self.conn.execute(self.insert_one, [encode(job)])

    def enqueue_batch(self, jobs: Sequence[JobCall]) -> None:
        self.conn.execute(self.insert_many, [[encode(job) for job in jobs]])

    def remove_queue(self) -> None:
        self.conn.execute(statement("DROP TABLE IF EXISTS {table}", self.config.queue))

    def close(self) -> None:
        self.conn.close()
