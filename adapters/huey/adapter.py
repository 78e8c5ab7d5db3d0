"""huey on Redis: sync jobs run by huey's own consumer, `huey_consumer`.

Thread workers (huey's default type, "a safe choice" for anything that is
neither CPU-heavy nor socket-heavy: the noop and sleep jobs here) run as the
other thread and coroutine libraries do (adapters/slots.py): P consumers on
the one queue, each `-w <slots / P>`, so they may use every core as the
process-per-slot backends do (each consumer pops with its own BRPOP). The
option huey_worker_type=process measures its CPU-bound choice: one consumer
forking `slots` worker processes
("greenlet", for socket I/O, needs gevent's monkey-patching of the whole
app and is not offered). The consumer is started with `-g TERM`, huey's
option that makes SIGTERM (what the harness sends to stop workers) its
graceful shutdown, as SIGINT is by default: running tasks finish.

Profiles. `default` is what `RedisHuey(name, url=...)` gives a new user;
results off unless the run asks for them (huey stores every return value
by default). huey pops a task off its Redis list and never acknowledges it:
its docs say huey "does not guarantee at-least-once delivery", so a task
whose worker dies is lost. `reliable` adds the one thing the docs
recommend against that: a SIGNAL_INTERRUPTED handler that enqueues again
the tasks a consumer shutdown interrupted. It cannot help against SIGKILL.
"""

from __future__ import annotations

from typing import Any

import huey

from adapters.base import AdapterConfig, JobCall, RequiredSettings
from adapters.huey.app import build, environment
from adapters.redis_keys import glob_escape, purge_keys
from adapters.slots import slot_map
from adapters.workers import WorkerGroup, WorkerProcessAdapter, console_script, worker_env

WORKER_TYPES = ("thread", "process")
HEALTH_CHECK_S = 10  # huey consumer default: dead workers are replaced this often


class HueyAdapter(WorkerProcessAdapter):
    # Process workers: kill one (the consumer's health check replaces it). Thread
    # workers have no child process: the whole consumer dies, as a crash would do.
    bulk_api = False  # huey has no bulk enqueue: a group() is one enqueue per task

    def __init__(self, config: AdapterConfig) -> None:
        super().__init__(config)
        if not config.broker_url:
            raise ValueError("huey needs a Redis broker URL")
        self.worker_type = str(config.options.get("huey_worker_type", "thread"))
        if self.worker_type not in WORKER_TYPES:
            raise ValueError(f"huey_worker_type {self.worker_type!r}; valid: "
                             f"{', '.join(WORKER_TYPES)}")
        # thread workers: P consumers of slots / P threads; process workers: one consumer
        self.consumers, self.per_consumer = (slot_map(config.slots, config.cpu_count)
                                             if self.worker_type == "thread"
                                             else (1, config.slots))
        self.requeue_interrupted = config.profile == "reliable"
        self.huey, self.task = build(config.broker_url, config.queue, config.results,
                                     self.requeue_interrupted)
        env = environment(config.broker_url, config.queue, config.results,
                          self.requeue_interrupted)
        self.workers = WorkerGroup("huey", config.log_dir, worker_env(config.records_dir, env))

    def required_settings(self) -> RequiredSettings:
        threads = self.worker_type == "thread"
        slots = self.config.slots
        return {
            "processes": self.consumers if threads else slots,
            "concurrency_per_process": self.per_consumer if threads else 1,
            "pool": (f"worker threads of {self.consumers} huey_consumer process"
                     f"{'es' if self.consumers > 1 else ''} on the one queue" if threads
                     else "worker processes forked by one huey_consumer"),
            # Each idle worker blocks in BRPOP for one task: none is held beyond a slot.
            "prefetch": slots,
            "acks": "none: a worker pops the task (BRPOP) and runs it; huey has no "
                    "acknowledgement, a task whose worker dies is lost",
            "results": self.config.results,
            "enqueue": "calling the task (huey.enqueue): one LPUSH per job (no bulk API)",
        }

    def extra_settings(self) -> dict[str, Any]:
        return {
            "library": f"huey {huey.__version__}",
            "worker_command": f"{self.consumers} x huey_consumer adapters.huey.app.huey "
                              f"-w {self.per_consumer} -k {self.worker_type} -g TERM",
            "worker_type": self.worker_type,
            "worker_type_from": ("huey's docs: thread is the default and safe choice; "
                                 "process for CPU-heavy, greenlet (gevent) for socket-heavy"
                                 if self.worker_type == "thread"
                                 else "options.huey_worker_type"),
            "graceful_signal": "TERM (-g TERM; huey's default is INT): running tasks finish",
            "storage": "RedisStorage: LPUSH / BRPOP on one list, read_timeout 1 s (defaults)",
            "health_check_s": HEALTH_CHECK_S,
            "retries": 0,
            "requeue_interrupted": (
                "SIGNAL_INTERRUPTED handler enqueues interrupted tasks again (huey docs)"
                if self.requeue_interrupted else "no (huey default)"),
            "serializer": "pickle (huey default)",
            "worker_log": "INFO, a line per task (huey_consumer default)",
            "delivery": "at most once: huey's docs say it does not guarantee at-least-once "
                        "delivery; a task running on a killed worker is lost",
        }

    def purge(self) -> None:
        storage = self.huey.storage
        purge_keys(storage.conn, [storage.queue_key, storage.schedule_key, storage.result_key,
                                  storage.counter_key],
                   [glob_escape(storage.notify_prefix) + "*"])

    def start_workers(self) -> None:
        cmd = [console_script("huey_consumer"), "adapters.huey.app.huey",
               "-w", str(self.per_consumer), "-k", self.worker_type, "-g", "TERM"]
        self.workers.start(cmd, self.consumers, ready=r"Huey consumer started with")

    def enqueue(self, job: JobCall) -> None:
        self.task(job.job_id, job.sent_ns, job.spec, job.payload)

    def close(self) -> None:
        self.huey.storage.conn.close()
