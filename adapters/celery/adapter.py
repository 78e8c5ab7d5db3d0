"""celery-redis and celery-rabbitmq: one adapter, the broker is the URL's scheme.

Slots map to one worker node, `--pool prefork --concurrency=slots`, started
with the `celery` CLI. Profiles:

- default: what a new user gets (early ack, prefetch multiplier 4, Redis
  visibility_timeout 1 h);
- reliable: what Celery's docs recommend against lost jobs: task_acks_late,
  task_reject_on_worker_lost and worker_prefetch_multiplier=1, and on RabbitMQ
  publisher confirms (broker_transport_options confirm_publish, kombu's pyamqp
  transport), as the other RabbitMQ backends' reliable profiles;
- tuned: what Celery's Optimizing guide advises for many short tasks: a large
  prefetch multiplier (64). The pool stays prefork (see backend.toml).

Results are off (task_ignore_result) unless config.results; then the
celery-redis backend stores them in the broker's Redis and celery-rabbitmq
uses rpc:// (results sent back as AMQP messages), so no second broker is
needed. The configuration is built once here and sent to the workers as
JSON, so settings() reports exactly what both sides run with.

Second queue (depth cells): the node consumes `-Q <queue>,<second>`, as
Celery's routing guide runs a worker on several queues. Celery gives the
queues no priority order: on Redis kombu issues one BRPOP over both queues and
moves the queue it just served to the back (queue_order_strategy
"round_robin", its default); on RabbitMQ the node has one consumer per queue
on one channel and the broker delivers from both as the prefetch window frees.
Either way a job on the second queue waits only behind what the node has
already prefetched, not behind the backlog.
"""

from __future__ import annotations

import json
from typing import Any

import celery
import kombu
from kombu.transport import redis as kombu_redis

from adapters.base import AdapterConfig, JobCall, RequiredSettings, Tuning
from adapters.celery.app import CONF_ENV, READY_LINE, TASK_NAME, build_app
from adapters.workers import WorkerGroup, WorkerProcessAdapter, console_script, worker_env

# Steps that only matter with several nodes or with events on: mingle asks
# other nodes for state at startup and waits for their replies, gossip and
# heartbeat exchange worker events. Our one node per cell runs with events off.
WORKER_FLAGS = ("--without-mingle", "--without-gossip", "--without-heartbeat")
PREFETCH_MULTIPLIER = {"default": 4, "reliable": 1, "tuned": 64}
PREFETCH_DOCS = ("Celery docs, Optimizing > Prefetch Limits: with many short-running tasks "
                 "and throughput important, 'this number should be large ... Say 64, or 128' "
                 "(https://docs.celeryq.dev/en/stable/userguide/optimizing.html"
                 "#prefetch-limits)")


def transport_of(url: str) -> str:
    """'redis' or 'amqp', from the broker URL (nothing else, no credentials)."""
    scheme = url.split("://", 1)[0].lower()
    if scheme in ("redis", "rediss"):
        return "redis"
    if scheme in ("amqp", "amqps", "pyamqp"):
        return "amqp"
    raise ValueError(f"celery adapter: unsupported broker scheme {scheme!r}")


def celery_conf(config: AdapterConfig) -> dict[str, Any]:
    """The Celery settings of one cell, identical for producer and workers."""
    url = config.broker_url or ""
    transport = transport_of(url)
    reliable = config.profile == "reliable"
    conf: dict[str, Any] = {
        "broker_url": url,
        # Explicit: retry while the broker comes up (the future default), no warning.
        "broker_connection_retry_on_startup": True,
        "task_default_queue": config.queue,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": reliable,
        "task_reject_on_worker_lost": reliable,
        "worker_prefetch_multiplier": PREFETCH_MULTIPLIER[config.profile],
        "task_ignore_result": not config.results,
        "result_backend": None,
        "worker_concurrency": config.slots,
    }
    if config.results:
        conf["result_backend"] = url if transport == "redis" else "rpc://"
    timeout = config.options.get("visibility_timeout_s")
    if timeout is not None and transport == "redis":
        # kombu sweeps for expired unacked messages every interval x throttle seconds
        # (10 x 10 by default) and advises lowering the interval with a low timeout:
        # a 1 s sweep, so the shortened timeout is what decides the redelivery
        conf["broker_transport_options"] = {"visibility_timeout": timeout,
                                            "unacked_restore_interval": 1,
                                            "unacked_restore_throttle": 1}
    if reliable and transport == "amqp":
        # publisher confirms, as the other RabbitMQ backends' reliable profiles: without
        # them a publish the broker drops raises nothing (kombu's pyamqp transport docs)
        conf["broker_transport_options"] = {"confirm_publish": True}
    return conf


class CeleryAdapter(WorkerProcessAdapter):
    """Celery with a Redis or RabbitMQ broker; one prefork worker node."""

    bulk_api = False  # no bulk publish in Celery: a group still publishes one message per task
    second_queue = ("celery: -Q default,second, no priority order (Redis: one BRPOP over both, "
                    "round robin; RabbitMQ: a consumer per queue); behind the prefetched jobs only")

    def __init__(self, config: AdapterConfig) -> None:
        super().__init__(config)
        self.transport = transport_of(config.broker_url or "")
        self.conf = celery_conf(config)
        self.app = build_app(self.conf)
        self.task = self.app.tasks[TASK_NAME]
        # A connection of this adapter's own, not kombu's process-wide pool:
        # the driver forks extra producers that build their own adapter, and
        # a pool inherited through fork would share the parent's socket.
        self.connection = self.app.connection_for_write()
        self.producer = self.app.amqp.Producer(self.connection)
        env = worker_env(config.records_dir, {CONF_ENV: json.dumps(self.conf)})
        self.workers = WorkerGroup("celery", config.log_dir, env)
        self._starts = 0

    def _visibility_timeout(self) -> float | None:
        """Seconds before Redis redelivers an unacked message; None on RabbitMQ."""
        if self.transport != "redis":
            return None
        options = self.conf.get("broker_transport_options", {})
        return float(options.get("visibility_timeout", kombu_redis.Channel.visibility_timeout))

    def _amqp_durability(self) -> str | None:
        """What RabbitMQ is told to keep of the cell's queue and messages; None on Redis."""
        if self.transport != "amqp":
            return None
        durable = self.app.amqp.queues[self.config.queue].durable
        mode = self.app.conf.task_default_delivery_mode
        return (f"{'durable' if durable else 'transient'} queue, delivery_mode {mode} "
                f"(kombu and Celery defaults)")

    def tunings(self) -> dict[str, Tuning]:
        return {"worker_prefetch_multiplier": Tuning(PREFETCH_MULTIPLIER["tuned"],
                                                     PREFETCH_DOCS)}

    def required_settings(self) -> RequiredSettings:
        conf = self.conf
        backend = conf["result_backend"]
        late = ("late: after the task returns; a task whose pool process died is re-queued "
                "(task_reject_on_worker_lost)" if conf["task_reject_on_worker_lost"] else
                "late: after the task returns")
        return {
            "processes": conf["worker_concurrency"], "concurrency_per_process": 1,
            "pool": "prefork: one worker node, a pool process per slot",
            # the broker's window counts unacked messages; an early-acked task is acked as
            # it starts, so the running ones come on top of the window
            "prefetch": conf["worker_prefetch_multiplier"] * conf["worker_concurrency"]
            + (0 if conf["task_acks_late"] else conf["worker_concurrency"]),
            "acks": late if conf["task_acks_late"]
            else "early: when a pool process starts the task",
            "results": backend is not None,
            "enqueue": "Task.apply_async, one publish per job (one producer connection)",
        }

    def extra_settings(self) -> dict[str, Any]:
        conf = self.conf
        backend = conf["result_backend"]
        return {
            "celery_version": celery.__version__,
            "kombu_version": kombu.__version__,
            "broker_transport": "redis (kombu)" if self.transport == "redis" else "amqp (py-amqp)",
            "worker_nodes": 1,
            "pool_scheduling": "fair (Celery default -O)",
            "prefetch_multiplier": conf["worker_prefetch_multiplier"],
            "acks_late": conf["task_acks_late"],
            "reject_on_worker_lost": conf["task_reject_on_worker_lost"],
            "result_backend": backend.split("://", 1)[0] if backend else "off",
            "ignore_result": conf["task_ignore_result"],
            "visibility_timeout_s": self._visibility_timeout(),
            "redis_transport_options": (conf.get("broker_transport_options")
                                        if self.transport == "redis" else None),
            "publisher_confirms": (bool(conf.get("broker_transport_options", {})
                                        .get("confirm_publish"))
                                   if self.transport == "amqp" else None),
            "amqp_durability": self._amqp_durability(),
            "cancel_long_running_tasks_on_connection_loss":
                self.app.conf.worker_cancel_long_running_tasks_on_connection_loss,
            "serializer": conf["task_serializer"],
            "worker_flags": list(WORKER_FLAGS),
            "worker_loglevel": "WARNING (Celery default)",
        }

    def purge(self) -> None:
        """Empty this cell's queue only (app.control.purge would hit every queue).

        On RabbitMQ purging a queue that does not exist is a channel error:
        nothing to remove, so it is ignored.
        """
        queues = tuple(self.queue_names())
        with self.app.connection_for_write() as conn:
            for queue in queues:
                with conn.channel() as channel:  # a channel error closes its channel
                    try:
                        channel.queue_purge(queue)
                    except conn.channel_errors:
                        pass
            if self.transport == "redis":
                with conn.channel() as channel:
                    self._purge_unacked(channel, queues)

    @staticmethod
    def _purge_unacked(channel: Any, queues: tuple[str, ...]) -> None:
        """Drop this queue's delivered-but-unacked messages from kombu's Redis hash.

        kombu keeps them in one hash for all queues and puts them back after
        visibility_timeout; left behind by a killed worker, they would
        reappear in a later cell's broker. Entries are [message, exchange,
        routing_key] and the routing key is the queue name.
        """
        client = channel.client
        for tag, entry in client.hscan_iter(channel.unacked_key):
            if json.loads(entry)[2] in queues:
                client.pipeline().zrem(channel.unacked_index_key, tag).hdel(
                    channel.unacked_key, tag).execute()

    def start_workers(self) -> None:
        """One node; a name of its own per start, as RabbitMQ gives each node's
        control queue (pidbox) to one connection only."""
        self._starts += 1
        node = f"{self.config.queue}-{self._starts}@%h"
        cmd = [console_script("celery"), "-A", "adapters.celery.app", "worker",
               "--pool", "prefork", f"--concurrency={self.config.slots}",
               "-Q", ",".join(self.queue_names()), "-n", node, *WORKER_FLAGS]
        self.workers.start(cmd, 1, ready=READY_LINE)

    def replace_dead(self) -> None:
        """Replace a dead node under a new name; a killed pool child is already
        replaced by its node.

        Celery's supervisor of pool children is the node's main process: it
        forks a new child for a killed one, so a second node would only
        double the slots. A fresh node starts only when a main process died.
        """
        if self.workers.drop_dead():
            self.start_workers()

    def enqueue(self, job: JobCall) -> None:
        self._publish(job, self.config.queue)

    def enqueue_second(self, job: JobCall) -> None:
        self._publish(job, self.second_queue_name)

    def _publish(self, job: JobCall, queue: str) -> None:
        self.task.apply_async(args=[job.job_id, job.sent_ns, job.spec, job.payload],
                              queue=queue, producer=self.producer)

    def close(self) -> None:
        self.connection.close()
        self.app.close()
