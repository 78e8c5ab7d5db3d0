"""amqp-raw: the ceiling a Python client gets from RabbitMQ, with pika.

The producer basic_publishes a small JSON message per job to the default
exchange (routing key = the cell's queue). A few consumer processes
(adapters/raw_consumers.py `layout`, adapters/amqp_raw/worker.py) each
consume on one connection with basic_qos prefetch_count=PREFETCH per slot of
the process. The deliveries already buffered are one fetch: noop jobs run at
once in the consuming thread (a raw fetch: one gate look-up and one count),
any other job in one of the process's `slots / processes` job threads, one
job at a time each; acks are multiple=True where the jobs ended in order
(after a fetch once ACK_EVERY are unacked, or sooner).

Why manual ack with a bounded prefetch rather than auto_ack: RabbitMQ
ignores basic_qos for auto_ack consumers and pushes them as many messages
as the socket takes, so with a preloaded queue the first consumer to
connect would swallow most of it while the others idle. That measures
socket buffers, not `slots` parallel workers (tried: 240 preloaded 100 ms
jobs, 8 auto_ack consumers -> one got all 240, 10 jobs/s instead of 80).
PREFETCH is Celery's default total (4 per slot): the first consumer to
connect holds at most that many of a preloaded queue.

Durability is that of the libraries set against this ceiling (Celery and
Dramatiq declare durable queues and publish persistent messages), as the
RabbitMQ broker kind declares it per profile (core/brokers/rabbitmq.py):
- default: durable classic queue, persistent messages (delivery_mode=2),
  no publisher confirms. A killed consumer's unacked messages are redelivered.
- reliable: the same, plus publisher confirms with mandatory=True (an
  unroutable message is an error, not a silently confirmed drop).
options["amqp_durable"] (bool), when given, decides durable queue +
persistent messages whatever the profile (the broker-crash scenario's
"transient" and "durable" cells).

pika has no batch publish, so bulk_api stays False: enqueue_batch is one
basic_publish per job. Heartbeats are off on every connection: a
BlockingConnection only answers them while pika runs its I/O loop, which
a waiting producer or a long job does not, and on loopback a dead peer is
seen at once through the closed socket anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPConnectionError, AMQPError, ChannelWrongStateError

from adapters.base import AdapterConfig, JobCall, RequiredSettings, results_unsupported
from adapters.raw_consumers import consumer_env, layout, layout_source
from adapters.raw_message import ACK_FLUSH_S, NO_RETURN_STORE, encode
from adapters.workers import WorkerGroup, WorkerProcessAdapter, python_module, worker_env
from core.brokers.rabbitmq import RabbitMQ
from core.urls import mask

READY_LINE = "amqp-raw consumer ready"
PREFETCH = 4  # per consumer thread
ACK_EVERY = 2  # one multiple-ack per this many messages at most
QUEUE_ARGUMENTS = {"x-queue-type": "classic"}
T = TypeVar("T")


class AmqpConnectError(RuntimeError):
    """RabbitMQ could not be reached or refused us; the message holds the masked URL."""


def is_durable(config: AdapterConfig) -> bool:
    """Durable queue + persistent messages: options["amqp_durable"] when given, else
    the RabbitMQ persistence of the cell's profile."""
    if "amqp_durable" in config.options:
        return bool(config.options["amqp_durable"])
    return RabbitMQ.persistence[RabbitMQ.persistence_for(config.profile)].durable


def connect(url: str | None) -> pika.BlockingConnection:
    """A BlockingConnection with heartbeats off, or AmqpConnectError naming the masked URL."""
    if not url:
        raise AmqpConnectError("amqp-raw needs a broker URL (amqp://user:pass@host:port/%2F)")
    try:
        params = pika.URLParameters(url)
        params.heartbeat = 0
        return pika.BlockingConnection(params)
    except (AMQPError, OSError, ValueError) as exc:
        # pika's repr names the cause (refused, ACCESS_REFUSED...); scrub the password anyway.
        password = urlsplit(url).password
        reason = repr(exc).replace(password, "***") if password else repr(exc)
        raise AmqpConnectError(f"cannot connect to RabbitMQ at {mask(url)}: {reason}") from None


def declare_queue(channel: BlockingChannel, queue: str, durable: bool) -> None:
    """The one queue declaration producer and consumers share.

    Declaring with other flags than an existing queue's fails with
    PRECONDITION_FAILED, so every side goes through here.
    """
    channel.queue_declare(queue, durable=durable, arguments=QUEUE_ARGUMENTS)


class AmqpRawAdapter(WorkerProcessAdapter):
    bulk_api = False  # pika has no batch publish

    def __init__(self, config: AdapterConfig) -> None:
        super().__init__(config)
        self.durable = is_durable(config)
        self.confirms = config.profile == "reliable"
        self.properties = pika.BasicProperties(
            delivery_mode=pika.DeliveryMode.Persistent if self.durable
            else pika.DeliveryMode.Transient)
        self.connection: pika.BlockingConnection | None = None
        self._chan: BlockingChannel | None = None
        self.processes, self.threads = layout(config)
        env = worker_env(config.records_dir, {**consumer_env(config, self.threads),
                                              "QB_DURABLE": "1" if self.durable else "0"})
        self.workers = WorkerGroup("amqp-raw", config.log_dir, env)

    def required_settings(self) -> RequiredSettings:
        return {"processes": self.processes, "concurrency_per_process": self.threads,
                "pool": f"per process one consuming connection (basic_qos prefetch_count="
                        f"{PREFETCH * self.threads}) and {self.threads} job threads, one "
                        f"job at a time each; a fetch of noop jobs runs in the consuming "
                        f"thread at once",
                "prefetch": PREFETCH * self.config.slots,
                "acks": f"manual basic_ack after the jobs, multiple=True up to the first "
                        f"job still running: after a fetch once {ACK_EVERY} are unacked, or "
                        f"sooner (also for a job that raised)",
                "results": results_unsupported(self.config.results, NO_RETURN_STORE),
                "enqueue": "basic_publish per job to the default exchange (no batch API)"}

    def extra_settings(self) -> dict[str, Any]:
        source = ("options.amqp_durable" if "amqp_durable" in self.config.options else
                  f"the profile's RabbitMQ persistence "
                  f"({RabbitMQ.persistence_for(self.config.profile)})")
        return {
            "client": f"pika {pika.__version__} BlockingConnection",
            "queue": f"classic, {'durable' if self.durable else 'transient (non-durable)'}",
            "delivery_mode": 2 if self.durable else 1, "durable_from": source,
            "publisher_confirms": self.confirms, "mandatory": self.confirms,
            "ack_every": ACK_EVERY, "ack_flush_s": ACK_FLUSH_S,
            "processes_from": layout_source(self.config),
            "heartbeat": 0, "queue_cleanup": "queue_delete when the group ends",
        }

    @property
    def channel(self) -> BlockingChannel:
        """The producer channel, (re)opened on first use or after a lost connection."""
        if self._chan is None or not self._chan.is_open:
            if self.connection is not None and self.connection.is_open:
                self.connection.close()
            self.connection = connect(self.config.broker_url)
            self._chan = self.connection.channel()
            if self.confirms:
                self._chan.confirm_delivery()
            declare_queue(self._chan, self.config.queue, self.durable)
        return self._chan

    def _on_channel(self, call: Callable[[BlockingChannel], T]) -> T:
        """`call` on the producer channel; after a broker restart, reconnect once and
        call again."""
        try:
            return call(self.channel)
        except (AMQPConnectionError, ChannelWrongStateError):
            self._chan = None
            return call(self.channel)

    def purge(self) -> None:
        """Declare (preloaded jobs need the queue before any consumer runs), then empty."""
        self._on_channel(lambda channel: channel.queue_purge(self.config.queue))

    def start_workers(self) -> None:
        cmd = python_module("adapters.amqp_raw.worker")
        self.workers.start(cmd, self.processes, ready=READY_LINE)

    def enqueue(self, job: JobCall) -> None:
        """One publish. With confirms on, BlockingChannel waits for the broker's ack and
        raises NackError / UnroutableError, so a returned call means the broker has it."""
        body = encode(job)
        self._on_channel(lambda channel: channel.basic_publish(
            "", self.config.queue, body, self.properties, mandatory=self.confirms))

    def remove_queue(self) -> None:
        """Delete the group's queue (groups use fresh names; durable ones would pile up,
        each with its messages, and every later broker restart would recover them all)."""
        if self.connection is None:
            return  # never connected: nothing was declared
        try:
            self._on_channel(lambda channel: channel.queue_delete(self.config.queue))
        except (AMQPError, AmqpConnectError):
            pass  # best effort: the broker may be gone for good

    def close(self) -> None:
        if self.connection is not None and self.connection.is_open:
            try:
                self.connection.close()
            except AMQPError:
                pass
        self.connection = self._chan = None
