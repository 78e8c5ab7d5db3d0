"""Consumer process of the amqp-raw backend (see adapters/amqp_raw/adapter.py).

Consumer threads (adapters/raw_consumers.py), each on its own connection
with basic_qos prefetch PREFETCH, take every delivery the broker has already
sent (up to PREFETCH) as one batch, which runs as a raw fetch does
(adapters/raw_message.run_batch: one gate look-up and one count or record for
a batch of noop jobs, any other job one at a time), and ack with
multiple=True: after a batch once ACK_EVERY jobs are unacked, once ACK_FLUSH_S
passed since the oldest unacked job started (a long job is acked at once),
and as soon as no message is waiting. The ack comes after the job in every
profile, so a consumer killed mid-job gets its unacked messages redelivered.
If the broker goes away after we were ready (broker-crash scenario), the
consumer reconnects until it is stopped; a broker unreachable at start is a
fast failure with the masked URL, which WorkerGroup shows. After a
reconnect it first asks whether the queue survived the restart and says so
in its log when it did not: declaring it again creates an empty queue, so
without that line a queue the broker lost (with every message in it) would
look like a queue the consumers had drained (docs/methodology.md, crash
recovery).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.exceptions import AMQPConnectionError, ChannelClosedByBroker

from adapters.amqp_raw.adapter import (
    ACK_EVERY,
    PREFETCH,
    READY_LINE,
    AmqpConnectError,
    connect,
    declare_queue,
)
from adapters.raw_consumers import run_consumers
from adapters.raw_message import DeferredAcks, run_batch

IDLE_S = 0.002  # no delivery for this long: ack what ran
NOT_FOUND = 404


def open_channel(connection: BlockingConnection, queue: str, durable: bool) -> BlockingChannel:
    channel = connection.channel()
    declare_queue(channel, queue, durable)
    channel.basic_qos(prefetch_count=PREFETCH)
    return channel


class Acks(DeferredAcks):
    """One basic_ack(multiple=True) of the latest finished job's tag acks every pending
    one (a consumer's delivery tags rise, and its jobs end in order)."""

    def __init__(self, channel: BlockingChannel) -> None:
        super().__init__()
        self.channel = channel

    def send(self, keys: list[int]) -> None:
        self.channel.basic_ack(keys[-1], multiple=True)


def serve(channel: BlockingChannel, queue: str) -> None:
    """Consume until the broker cancels us or the connection is lost (raises)."""
    acks = Acks(channel)
    deliveries = channel.consume(queue, inactivity_timeout=IDLE_S)
    for method, _properties, body in deliveries:
        if method is None:  # nothing came for IDLE_S
            acks.flush()
            continue
        tags, bodies = [method.delivery_tag], [body]
        while channel.get_waiting_message_count():  # the rest of what the broker sent
            method, _properties, body = next(deliveries)
            tags.append(method.delivery_tag)
            bodies.append(body)
        run_batch(bodies, acks.ran, keys=tags)
        if len(acks.pending) >= ACK_EVERY:
            acks.flush()


def queue_exists(connection: BlockingConnection, queue: str) -> bool:
    """A passive declare on a channel of its own (the broker closes it if not)."""
    channel = connection.channel()
    try:
        channel.queue_declare(queue, passive=True)
    except ChannelClosedByBroker as exc:
        if exc.reply_code != NOT_FOUND:
            raise
        return False
    channel.close()
    return True


def reconnect(url: str) -> BlockingConnection:
    """Retry until the broker is back; the harness stops us if it never is."""
    while True:
        try:
            return connect(url)
        except AmqpConnectError:
            time.sleep(0.5)


def consumer(url: str, queue: str, durable: bool) -> Callable[[], None]:
    """Connect now (a refused start fails the process); the loop consumes and reconnects."""
    try:
        connection = connect(url)
    except AmqpConnectError as exc:
        sys.exit(str(exc))
    channel = open_channel(connection, queue, durable)

    def loop() -> None:
        nonlocal channel
        while True:
            try:
                serve(channel, queue)
                print("amqp-raw consumer cancelled by the broker; exiting", flush=True)
                return
            except AMQPConnectionError as exc:  # channel errors (PRECONDITION_FAILED...): fatal
                print(f"amqp-raw consumer lost the broker ({type(exc).__name__}); reconnecting",
                      flush=True)
            connection = reconnect(url)
            if not queue_exists(connection, queue):
                print(f"amqp-raw consumer: queue {queue} did not survive the broker restart; "
                      f"declaring it again (empty)", flush=True)
            channel = open_channel(connection, queue, durable)

    return loop


def main() -> None:
    url, queue = os.environ["QB_BROKER_URL"], os.environ["QB_QUEUE"]
    durable = os.environ.get("QB_DURABLE") == "1"
    run_consumers(lambda _index: consumer(url, queue, durable), READY_LINE)


if __name__ == "__main__":
    main()
