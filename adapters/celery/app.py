"""The Celery app of the celery-* backends, for the worker CLI and the producer.

Workers start as users start them, `celery -A adapters.celery.app worker`.
The adapter (adapters/celery/adapter.py) decides the configuration once and
hands the very same dict to its own producer app and, as JSON in
QB_CELERY_CONF, to the workers, so both sides cannot drift apart.
"""

from __future__ import annotations

import json
import os
from typing import Any

from celery import Celery, signals

from adapters.job import bench_job

CONF_ENV = "QB_CELERY_CONF"
TASK_NAME = "queuebench.bench_job"
READY_LINE = "queuebench: celery worker ready"


def build_app(conf: dict[str, Any]) -> Celery:
    """A Celery app with `conf` applied and bench_job registered as TASK_NAME."""
    app = Celery("queuebench", set_as_current=False)
    app.conf.update(conf)
    app.task(name=TASK_NAME, shared=False)(bench_job)
    return app


@signals.worker_ready.connect
def _announce_ready(**_: Any) -> None:
    """Print a readiness line from Celery's own worker_ready signal.

    Celery logs "<node> ready." only at INFO, and INFO also logs two lines
    per task; the workers run at Celery's default level (WARNING) so the
    benchmark does not time log writes. worker_ready fires at the same point,
    once the consumer is consuming.
    """
    print(READY_LINE, flush=True)


def __getattr__(name: str) -> Celery:
    """`celery -A adapters.celery.app` looks up `app`: built from the adapter's env.

    Built lazily so the producer side can import build_app without an app
    of its own appearing from an unset environment.
    """
    if name != "app":
        raise AttributeError(name)
    app = build_app(json.loads(os.environ[CONF_ENV]))
    globals()["app"] = app
    return app
