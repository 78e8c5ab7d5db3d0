"""Consumer process of the amqp-raw backend (see adapters/amqp_raw/adapter.py).

One job at a time: prefetch 1, bench_job in the delivery callback, then
basic_ack. The ack comes after the job in every profile, so a consumer
killed mid-job gets its message redelivered by the broker to another one.
If the broker goes away after we were ready (broker-crash scenario), the
consumer reconnects until it is stopped; a broker unreachable at start is
a fast failure with the masked URL, which WorkerGroup shows.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.exceptions import AMQPConnectionError

from adapters.amqp_raw.adapter import (
    PREFETCH,
    READY_LINE,
    AmqpConnectError,
    connect,
    declare_queue,
)
from adapters.raw_message import run_message


def on_message(channel: BlockingChannel, method: Any, _properties: Any, body: bytes) -> None:
    run_message(body)
    channel.basic_ack(method.delivery_tag)


def serve(connection: BlockingConnection, queue: str, durable: bool) -> None:
    """Consume until the broker cancels us or the connection is lost (raises)."""
    channel = connection.channel()
    declare_queue(channel, queue, durable)
    channel.basic_qos(prefetch_count=PREFETCH)
    channel.basic_consume(queue, on_message, auto_ack=False)
    print(READY_LINE, flush=True)
    channel.start_consuming()


def reconnect(url: str) -> BlockingConnection:
    """Retry until the broker is back; the harness stops us if it never is."""
    while True:
        try:
            return connect(url)
        except AmqpConnectError:
            time.sleep(0.5)


def main() -> None:
    url, queue = os.environ["QB_BROKER_URL"], os.environ["QB_QUEUE"]
    durable = os.environ.get("QB_DURABLE") == "1"
    try:
        connection = connect(url)
    except AmqpConnectError as exc:
        sys.exit(str(exc))
    while True:
        try:
            serve(connection, queue, durable)
            print("amqp-raw consumer cancelled by the broker; exiting", flush=True)
            return
        except AMQPConnectionError as exc:  # channel errors (PRECONDITION_FAILED...) are fatal
            print(f"amqp-raw consumer lost the broker ({type(exc).__name__}); reconnecting",
                  flush=True)
        connection = reconnect(url)


if __name__ == "__main__":
    main()
