"""Runs inside the amqp environment for tests/test_amqp_raw_acks.py.

    python tests/amqp_acks_probe.py QUEUE   (broker URL: BROKER_URL_ENV)

Publishes JOBS messages, takes them all on one channel, then acks them through
amqp-raw's Acks as job threads would end them: out of order, some while an earlier
one still runs. Prints {"open": the channel survived every ack, "left": messages the
queue still holds once the connection is closed (an unacked one comes back)}.
"""

from __future__ import annotations

import json
import os
import sys
import time

from adapters.amqp_raw.adapter import connect
from adapters.amqp_raw.worker import Acks
from core.envnames import BROKER_URL_ENV

JOBS = 6
ENDED = [[2, 3], [1], [5, 4, 6]]  # the delivery tags each flush finds ended


def main() -> None:
    queue, url = sys.argv[1], os.environ[BROKER_URL_ENV]
    connection = connect(url)
    channel = connection.channel()
    channel.queue_declare(queue)
    channel.queue_purge(queue)
    for index in range(JOBS):
        channel.basic_publish("", queue, b"%d" % index)
    channel.basic_qos(prefetch_count=JOBS)
    tags = []
    for method, _properties, _body in channel.consume(queue, inactivity_timeout=5):
        if method is None:
            break
        tags.append(method.delivery_tag)
        if len(tags) == JOBS:
            break
    acks = Acks(channel)
    acks.delivered(tags)
    for ended in ENDED:
        for tag in ended:
            acks.ran(tags[tag - 1], time.monotonic())
        acks.flush()
    connection.process_data_events(time_limit=0.5)  # a broker's channel error arrives now
    is_open = channel.is_open
    connection.close()
    connection = connect(url)
    left = connection.channel().queue_declare(queue, passive=True).method.message_count
    connection.close()
    print(json.dumps({"open": is_open, "left": left, "delivered": len(tags)}))


if __name__ == "__main__":
    main()
