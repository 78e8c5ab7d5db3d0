"""Consumer process of the amqp-raw backend (see adapters/amqp_raw/adapter.py).

Consumer threads (adapters/raw_consumers.py), each on its own connection
with basic_qos prefetch PREFETCH, run bench_job one message at a time and
ack with multiple=True: every ACK_EVERY messages, once ACK_FLUSH_S passed
since the oldest unacked job started (a long job is acked at once), and as
soon as no message is waiting. The ack comes after the job in every
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
    ACK_FLUSH_S,
    PREFETCH,
    READY_LINE,
    AmqpConnectError,
    connect,
    declare_queue,
)
from adapters.raw_consumers import run_consumers
from adapters.raw_message import run_batch

IDLE_S = 0.002  # no delivery for this long: ack what ran
NOT_FOUND = 404


def open_channel(connection: BlockingConnection, queue: str, durable: bool) -> BlockingChannel:
    channel = connection.channel()
    declare_queue(channel, queue, durable)
    channel.basic_qos(prefetch_count=PREFETCH)
    return channel


def serve(channel: BlockingChannel, queue: str) -> None:
    """Consume until the broker cancels us or the connection is lost (raises)."""
    last_tag, pending, oldest = 0, 0, 0.0
    for method, _properties, body in channel.consume(queue, inactivity_timeout=IDLE_S):
        if method is not None:
            started = time.monotonic()
            run_batch([body])
            last_tag, pending = method.delivery_tag, pending + 1
            oldest = oldest if pending > 1 else started
        if pending and (method is None or pending >= ACK_EVERY
                        or time.monotonic() - oldest > ACK_FLUSH_S):
            channel.basic_ack(last_tag, multiple=True)
            pending = 0


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
