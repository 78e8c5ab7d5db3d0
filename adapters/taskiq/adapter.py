"""taskiq-redis and taskiq-rabbitmq: asyncio jobs run by the `taskiq worker` CLI.

`taskiq worker adapters.taskiq.app:worker_broker --workers P
--max-async-tasks C`: the CLI forks P worker processes (and restarts one
that dies), each running at most C = slots / P tasks at once (P from
adapters.slots). The broker URL's scheme picks the broker package.

Profiles, taskiq-redis. `default` is ListQueueBroker (LPUSH / BRPOP): the
taskiq-redis README warns it has no acknowledgements, "if during message
processing worker was suddenly killed the message is going to be lost".
`reliable` is RedisStreamBroker, which the README says "supports
acknowledgements and therefore is fine to use in cases when data durability
is required": a consumer group reads the stream, a message is XACKed after
its task ran, and a message left unacked longer than idle_timeout (10 min)
is claimed by another worker.

taskiq-rabbitmq (taskiq-aio-pika). Its defaults already are RabbitMQ's
durable settings: a durable quorum queue, persistent messages, publisher
confirms (aio-pika's channel default) and an ack after the task ran, so
`reliable` changes nothing.

Every worker acks when the result is saved (taskiq's default ack type
when_saved; without a result backend that is right after the task). The
producer runs the broker's calls on an event loop in a thread of its own,
so an AMQP connection keeps its heartbeats between enqueues.
"""

from __future__ import annotations

from collections.abc import Coroutine, Sequence
from importlib.metadata import version
from typing import Any

import redis
from taskiq import AsyncTaskiqDecoratedTask

from adapters.base import AdapterConfig, JobCall, RequiredSettings
from adapters.event_loop import PrivateLoop, bounded_gather
from adapters.redis_keys import glob_escape, purge_keys
from adapters.slots import slot_map
from adapters.taskiq.app import TASK_NAME, BrokerSettings, build
from adapters.workers import WorkerGroup, WorkerProcessAdapter, console_script, worker_env

TIMEOUT_S = 30.0
READY_LINE = "Listening started."
XREAD_COUNT = 100  # RedisStreamBroker default: messages one XREADGROUP takes
IDLE_TIMEOUT_MS = 600_000  # RedisStreamBroker default
QOS = 10  # AioPikaBroker default prefetch_count per worker process
BROKERS = {
    "list": "taskiq_redis.ListQueueBroker (LPUSH / BRPOP)",
    "stream": "taskiq_redis.RedisStreamBroker (XADD / XREADGROUP, XACK, XAUTOCLAIM)",
    "amqp": "taskiq_aio_pika.AioPikaBroker",
}


class TaskiqAdapter(WorkerProcessAdapter):
    async_jobs = True
    bulk_api = False  # taskiq has no bulk kiq: one broker.kick per message

    def __init__(self, config: AdapterConfig) -> None:
        super().__init__(config)
        if not config.broker_url:
            raise ValueError(f"{config.backend} needs a broker URL")
        self.processes, self.concurrency = slot_map(config.slots, config.cpu_count)
        self.broker_settings = self._broker_settings(config)
        self.broker = build(self.broker_settings)
        task = self.broker.find_task(TASK_NAME)
        assert isinstance(task, AsyncTaskiqDecoratedTask)
        self.task = task
        self._loop = PrivateLoop()
        self._loop.start_thread(f"{config.backend}-producer")
        self._loop.submit(self.broker.startup(), TIMEOUT_S)  # declares queue / group
        self._redis = (redis.Redis.from_url(config.broker_url, socket_timeout=TIMEOUT_S)
                       if self.is_redis else None)
        env = worker_env(config.records_dir, self.broker_settings.to_env())
        self.workers = WorkerGroup(config.backend, config.log_dir, env)

    @staticmethod
    def _broker_settings(config: AdapterConfig) -> BrokerSettings:
        assert config.broker_url
        if not config.broker_url.startswith(("redis://", "rediss://", "unix://")):
            return BrokerSettings("amqp", config.broker_url, config.queue)
        kind = "stream" if config.profile == "reliable" else "list"
        idle = config.options.get("idle_timeout_s")
        return BrokerSettings(kind, config.broker_url, config.queue, results=config.results,
                              idle_timeout_ms=None if idle is None or kind != "stream"
                              else int(float(idle) * 1000))

    @property
    def is_redis(self) -> bool:
        return self.broker_settings.kind != "amqp"

    # -- settings -------------------------------------------------------------
    def _prefetch(self) -> int:
        kind, per_process = self.broker_settings.kind, self.concurrency
        if kind == "stream":  # one XREADGROUP claims up to XREAD_COUNT, handed out one by one
            per_process += XREAD_COUNT
        elif kind == "amqp":
            per_process = QOS
        return self.processes * per_process

    def required_settings(self) -> RequiredSettings:
        acks = {
            "list": "none: BRPOP removes the message; the task of a killed worker is lost",
            "stream": "XACK after the task ran (ack type when_saved); a message unacked for "
                      "idle_timeout is claimed by another worker (XAUTOCLAIM)",
            "amqp": "basic_ack after the task ran (ack type when_saved); RabbitMQ redelivers "
                    "the unacked messages of a worker whose connection dropped",
        }[self.broker_settings.kind]
        return {
            "processes": self.processes, "concurrency_per_process": self.concurrency,
            "pool": "asyncio tasks in the taskiq worker processes (--max-async-tasks each)",
            "prefetch": self._prefetch(),
            "acks": acks,
            "results": self.broker_settings.results,
            "enqueue": "task.kiq, one broker call per job (taskiq has no bulk API)",
        }

    def extra_settings(self) -> dict[str, Any]:
        kind = self.broker_settings.kind
        plugin = "taskiq-aio-pika" if kind == "amqp" else "taskiq-redis"
        extra: dict[str, Any] = {
            "library": f"taskiq {version('taskiq')}, {plugin} {version(plugin)}",
            "broker": BROKERS[kind],
            "worker_command": f"taskiq worker adapters.taskiq.app:worker_broker --workers "
                              f"{self.processes} --max-async-tasks {self.concurrency}",
            "ack_type": "when_saved (taskiq worker default)",
            "max_prefetch": "0 (taskiq worker default: no delivery beyond the free slots)",
            "serializer": "json (taskiq default formatter)",
            "worker_log": "INFO, a line per task (taskiq worker default)",
            "result_backend": self._results_setting(),
        }
        if kind == "stream":
            extra["idle_timeout_ms"] = self.broker_settings.idle_timeout_ms or IDLE_TIMEOUT_MS
            extra["xread_count"] = XREAD_COUNT
        if kind == "amqp":
            extra.update(qos=QOS, queue="durable quorum queue (taskiq-aio-pika default)",
                         delivery_mode="persistent", publisher_confirms=True)
        extra["delivery"] = {
            "list": "at most once: the README warns a killed worker's message is lost",
            "stream": "at least once: acked after the task; an unacked message is claimed "
                      "again after idle_timeout, so a task may run twice",
            "amqp": "at least once: acked after the task; RabbitMQ redelivers unacked "
                    "messages, so a task may run twice",
        }[kind]
        extra["profile_changes"] = {
            "list": "none (default profile)",
            "stream": "RedisStreamBroker instead of ListQueueBroker",
            "amqp": "none: taskiq-aio-pika's defaults are already durable",
        }[kind]
        return extra

    def _results_setting(self) -> str:
        if not self.config.results:
            return "off (taskiq default: no result backend)"
        if not self.is_redis:
            return "unsupported here: taskiq-aio-pika has no result backend; ran without"
        return "on: RedisAsyncResultBackend on the broker's Redis, results kept 3600 s"

    # -- queue and workers ---------------------------------------------------
    def purge(self) -> None:
        """Empty the queue. A stream is trimmed, not deleted: its consumer group (and
        the workers blocked on it) must survive."""
        queue = self.config.queue
        if self._redis is None:
            self._loop.submit(self._purge_amqp(), TIMEOUT_S)
            return
        if self.broker_settings.kind == "stream":
            self._redis.xtrim(queue, maxlen=0, approximate=False)
            keys: list[str] = []
        else:
            keys = [queue]
        purge_keys(self._redis, keys, [f"{glob_escape(queue)}:*"])  # results (prefix_str)

    async def _purge_amqp(self) -> None:
        channel = self.broker.write_channel  # type: ignore[attr-defined]
        await (await channel.get_queue(self.config.queue, ensure=True)).purge()

    async def _delete_amqp(self) -> None:
        channel = self.broker.write_channel  # type: ignore[attr-defined]
        await channel.queue_delete(self.config.queue)

    def remove_queue(self) -> None:
        if self._redis is None:
            self._loop.submit(self._delete_amqp(), TIMEOUT_S)
        else:
            self._redis.delete(self.config.queue)

    def start_workers(self) -> None:
        cmd = [console_script("taskiq"), "worker", "adapters.taskiq.app:worker_broker",
               "--workers", str(self.processes), "--max-async-tasks", str(self.concurrency)]
        # Every worker process logs the line once its broker started; wait for all P.
        ready = f"(?s)(?:{READY_LINE.replace('.', '[.]')}.*?){{{self.processes}}}"
        self.workers.start(cmd, 1, ready=ready)

    def _send(self, job: JobCall) -> Coroutine[Any, Any, Any]:
        return self.task.kiq(job.job_id, job.sent_ns, job.spec, job.payload)

    def enqueue(self, job: JobCall) -> None:
        self._loop.submit(self._send(job), TIMEOUT_S)

    def fill(self, jobs: Sequence[JobCall]) -> None:
        self._loop.submit(bounded_gather(map(self._send, jobs)), TIMEOUT_S)

    def close(self) -> None:
        try:
            if self._redis is not None:
                self._redis.close()
            self._loop.submit(self.broker.shutdown(), TIMEOUT_S)
        finally:
            self._loop.close()
