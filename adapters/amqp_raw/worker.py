"""Consumer process of the amqp-raw backend (see adapters/amqp_raw/adapter.py).

One connection per process, consumed by the process's main thread with
basic_qos prefetch PREFETCH x its job threads (THREADS_ENV, adapters/raw_consumers.py
`layout`). The deliveries pika has already buffered are one fetch. A fetch of noop
jobs of one cell runs at once in the consuming thread (adapters/raw_message.py
`run_if_noops`: one gate look-up, one count or record); any other job goes to
one of the process's job threads, which run one job at a time each. So a job
never waits for the socket, nor the socket for a job: a sleeping job's thread
sleeps while the consuming thread acks and reads, as Dramatiq splits its
consumer and worker threads. With the jobs of a fetch in one thread instead,
10 ms jobs ran at about 0.9x the clock's limit, below dramatiq-rabbitmq.

Acks (Acks) come after the job in every profile, so a consumer killed mid-job
gets its unacked messages redelivered, and are sent by the consuming thread:
after a fetch once ACK_EVERY jobs are unacked, once ACK_FLUSH_S passed since the
oldest unacked job started (a long job is acked at once), and as soon as no
message is waiting.

If the broker goes away after we were ready (broker-crash scenario), the
consumer reconnects until it is stopped, and drops the jobs it had not started
(the broker delivers them again); a broker unreachable at start is a fast
failure with the masked URL, which WorkerGroup shows. After a reconnect it
first asks whether the queue survived the restart and says so in its log when
it did not: declaring it again creates an empty queue, so without that line a
queue the broker lost (with every message in it) would look like a queue the
consumers had drained (docs/methodology.md, crash recovery).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from queue import SimpleQueue

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
from adapters.raw_consumers import THREADS_ENV
from adapters.raw_message import DeferredAcks, run_batch, run_if_noops
from core.envnames import WORKER_QUEUE_ENV, WORKER_URL_ENV

IDLE_S = 0.002  # no delivery for this long: ack what ran
NOT_FOUND = 404


class Acks(DeferredAcks):
    """Acks of finished jobs: one basic_ack(multiple=True) up to the highest tag below
    which every delivered job has finished, and one basic_ack per tag above it (a job
    that finished while an earlier one still runs in another job thread)."""

    def __init__(self, channel: BlockingChannel) -> None:
        super().__init__()
        self.channel = channel
        self.unacked: deque[int] = deque()  # delivered, not yet under a multiple-ack
        self.finished: set[int] = set()  # of those, the ended ones
        self.alone: set[int] = set()  # of those, the ones acked one by one

    def delivered(self, tags: list[int]) -> None:
        self.unacked.extend(tags)

    def send(self, keys: list[int]) -> None:
        self.finished.update(keys)
        upto = None
        while self.unacked and self.unacked[0] in self.finished:
            tag = self.unacked.popleft()
            self.finished.discard(tag)
            if tag in self.alone:
                self.alone.discard(tag)  # acked already; a multiple-ack skips it
            else:
                upto = tag
        if upto is not None:
            self.channel.basic_ack(upto, multiple=True)
        for tag in keys:
            if tag in self.finished and tag not in self.alone:
                self.channel.basic_ack(tag)
                self.alone.add(tag)


class Consumer:
    """One process's connection, the consuming thread's loop and the job threads."""

    def __init__(self, url: str, queue: str, durable: bool, threads: int) -> None:
        self.url, self.queue, self.durable = url, queue, durable
        self.prefetch = PREFETCH * threads
        self.generation = 0  # one per connection: a job of an older one is not acked
        self.jobs: SimpleQueue[tuple[int, int, bytes]] = SimpleQueue()  # generation, tag, body
        self.ended: SimpleQueue[tuple[int, int, float]] = SimpleQueue()  # ..., started
        self.channel = self.open_channel(connect(url))
        for _ in range(threads):
            threading.Thread(target=self.run_jobs, daemon=True).start()

    def open_channel(self, connection: BlockingConnection) -> BlockingChannel:
        channel = connection.channel()
        declare_queue(channel, self.queue, self.durable)
        channel.basic_qos(prefetch_count=self.prefetch)
        return channel

    def run_jobs(self) -> None:
        """A job thread: the jobs handed over, one at a time."""
        while True:
            generation, tag, body = self.jobs.get()
            if generation != self.generation:
                continue  # its connection is gone: the broker delivers it again
            run_batch([body], lambda key, started, gen=generation: self.ended.put(
                (gen, key, started)), keys=[tag])

    def serve(self) -> None:
        """Consume until the broker cancels us or the connection is lost (raises)."""
        channel, acks = self.channel, Acks(self.channel)
        deliveries = channel.consume(self.queue, inactivity_timeout=IDLE_S)
        for method, _properties, body in deliveries:
            if method is not None:
                tags, bodies = [method.delivery_tag], [body]
                while channel.get_waiting_message_count():  # the rest of what was sent
                    method, _properties, body = next(deliveries)
                    tags.append(method.delivery_tag)
                    bodies.append(body)
                acks.delivered(tags)
                if not run_if_noops(bodies, acks.ran, keys=tags):
                    for tag, body in zip(tags, bodies, strict=True):
                        self.jobs.put((self.generation, tag, body))
            while not self.ended.empty():
                generation, tag, started = self.ended.get()
                if generation == self.generation:
                    acks.ran(tag, started)
            if acks.pending and (method is None or len(acks.pending) >= ACK_EVERY):
                acks.flush()

    def loop(self) -> None:
        """Serve; after a lost connection, reconnect and serve again."""
        while True:
            try:
                self.serve()
                print("amqp-raw consumer cancelled by the broker; exiting", flush=True)
                return
            except AMQPConnectionError as exc:  # channel errors (PRECONDITION_FAILED...): fatal
                print(f"amqp-raw consumer lost the broker ({type(exc).__name__}); reconnecting",
                      flush=True)
            self.generation += 1
            connection = reconnect(self.url)
            if not queue_exists(connection, self.queue):
                print(f"amqp-raw consumer: queue {self.queue} did not survive the broker "
                      f"restart; declaring it again (empty)", flush=True)
            self.channel = self.open_channel(connection)


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


def main() -> None:
    url, queue = os.environ[WORKER_URL_ENV], os.environ[WORKER_QUEUE_ENV]
    durable = os.environ.get("QB_DURABLE") == "1"
    try:  # a refused start fails the process
        consumer = Consumer(url, queue, durable, int(os.environ.get(THREADS_ENV, "1")))
    except AmqpConnectError as exc:
        sys.exit(str(exc))
    print(READY_LINE, flush=True)
    consumer.loop()


if __name__ == "__main__":
    main()
