"""saq on Redis: asyncio jobs run by saq's own worker CLI.

P x `saq adapters.saq.worker.settings --workers 1`, each running
`concurrency` = slots / P jobs at once (P from adapters.slots, as for every
backend that runs several jobs in one process). Not one CLI with
`--workers P`: that CLI is itself a worker and forks P - 1 more that it
neither supervises nor stops, so a killed CLI left orphans running next to
its replacement (more slots than the cell's) and a SIGTERM missed them.

Profiles. `default` is saq's Job defaults: timeout 10 s, retries 1 (one
attempt), and the worker's sweep every 60 s, which aborts an active job past
its timeout; results off (ttl -1: the job's key is deleted when it ends;
with results on, saq's ttl 600 s). `reliable` sets retries=3 on every job:
saq re-queues a job the sweep finds stuck, or that raised, while attempts
are left (saq's README: "sweeping stuck jobs", "more robust failure
handling"). A job's key names the queue, so purge finds every key of a cell.
"""

from __future__ import annotations

from collections.abc import Coroutine, Sequence
from importlib.metadata import version
from typing import Any

import redis
from saq import Queue
from saq.job import Job

from adapters.base import AdapterConfig, JobCall, RequiredSettings
from adapters.event_loop import PrivateLoop, send_keyed
from adapters.redis_keys import glob_escape, purge_keys
from adapters.saq.worker import FUNCTION_NAME, SWEEP_ABORT_S, worker_environment
from adapters.slots import slot_map
from adapters.workers import (
    READY_LINE,
    WorkerGroup,
    WorkerProcessAdapter,
    console_script,
    worker_env,
)

REDIS_TIMEOUT_S = 30.0
RELIABLE_RETRIES = 3
DEFAULT_SWEEP_S = 60  # saq Worker timers["sweep"]
JOB_DEFAULTS = {name: field.default for name, field in Job.__dataclass_fields__.items()}


class SaqAdapter(WorkerProcessAdapter):
    async_jobs = True
    bulk_api = False  # saq has no bulk enqueue: Queue.map/batch enqueue job by job

    def __init__(self, config: AdapterConfig) -> None:
        super().__init__(config)
        if not config.broker_url:
            raise ValueError("saq needs a Redis broker URL")
        self.processes, self.concurrency = slot_map(config.slots, config.cpu_count)
        timeout = config.options.get("job_timeout_s")
        sweep = config.options.get("saq_sweep_s")
        self.sweep_s: int | None = None if sweep is None else int(sweep)
        # Only what differs from saq's Job defaults is passed.
        self._job_fields: dict[str, Any] = {}
        if timeout is not None:
            self._job_fields["timeout"] = int(timeout)
        if config.profile == "reliable":
            self._job_fields["retries"] = RELIABLE_RETRIES
        if not config.results:
            self._job_fields["ttl"] = -1
        self._loop = PrivateLoop()
        self.queue = Queue.from_url(config.broker_url, name=config.queue)
        self._loop.run(self.queue.connect(), REDIS_TIMEOUT_S)
        self._client = redis.Redis.from_url(config.broker_url, socket_timeout=REDIS_TIMEOUT_S)
        env = worker_environment(config.broker_url, config.queue, self.concurrency, self.sweep_s)
        self.workers = WorkerGroup("saq", config.log_dir, worker_env(config.records_dir, env))

    def _job(self, field: str) -> Any:
        return self._job_fields.get(field, JOB_DEFAULTS[field])

    def required_settings(self) -> RequiredSettings:
        return {
            "processes": self.processes, "concurrency_per_process": self.concurrency,
            "pool": "asyncio tasks in the saq worker processes (concurrency each)",
            # Each of the `concurrency` loops of a worker moves one job (BLMOVE) at a time.
            "prefetch": self.processes * self.concurrency,
            "acks": "the job moves to an active list when taken (BLMOVE) and leaves it when "
                    "it ends; the sweep aborts, or re-queues while retries are left, a job "
                    "active past its timeout",
            "results": self.config.results,
            "enqueue": "Queue.enqueue, one call per job (saq has no bulk API)",
        }

    def extra_settings(self) -> dict[str, Any]:
        retries = self._job("retries")
        return {
            "library": f"saq {version('saq')}",
            "worker_command": f"{self.processes} x saq adapters.saq.worker.settings --workers 1",
            "job_timeout_s": self._job("timeout"),
            "retries": retries,
            "sweep_s": self.sweep_s or DEFAULT_SWEEP_S,
            "sweep_from": "options.saq_sweep_s" if self.sweep_s else "saq default",
            "sweep_abort_wait_s": SWEEP_ABORT_S if self.sweep_s else 5.0,
            "ttl_s": self._job("ttl"),
            "stored_in_redis": ("a job key per queued or active job, deleted when it ends"
                                if self._job("ttl") == -1 else
                                f"a job key per job, kept {self._job('ttl')} s after it ends"),
            "job_key": "'<queue>-<n>' set by the adapter (saq default: uuid1)",
            "serializer": "json (saq default)",
            "worker_log": "WARNING (saq CLI default, no -v)",
            "delivery": (f"at least once while attempts are left: a stuck or failed job is "
                         f"re-queued, up to {retries} attempts" if retries > 1 else
                         "at most once: a job is attempted once; the sweep aborts a stuck one"),
        }

    def purge(self) -> None:
        name = glob_escape(self.config.queue)
        purge_keys(self._client, [], [f"saq:{name}:*", f"saq:job:{name}:*",
                                      f"saq:abort:{name}-*"])

    def start_workers(self) -> None:
        cmd = [console_script("saq"), "adapters.saq.worker.settings", "--workers", "1"]
        self.workers.start(cmd, self.processes, ready=READY_LINE)  # from saq's startup hook

    def _send(self, job: JobCall) -> Coroutine[Any, Any, Job | None]:
        return self.queue.enqueue(
            FUNCTION_NAME, key=f"{self.config.queue}-{job.job_id}", **self._job_fields,
            job_id=job.job_id, sent_ns=job.sent_ns, spec=job.spec, payload=job.payload)

    def enqueue(self, job: JobCall) -> None:
        send_keyed(self._loop, self._send, [job], "saq")

    def fill(self, jobs: Sequence[JobCall]) -> None:
        send_keyed(self._loop, self._send, jobs, "saq")

    def close(self) -> None:
        try:
            self._client.close()
            self._loop.run(self.queue.disconnect(), REDIS_TIMEOUT_S)
        finally:
            self._loop.close()
