"""The baseline: plain Celery tasks on the same Redis, with no durability at all."""

from __future__ import annotations

import os

from celery import Celery

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
QUEUE = "bench.baseline"

celery = Celery("bench_baseline", broker=REDIS_URL, backend=REDIS_URL)
celery.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_default_queue=QUEUE,
    worker_prefetch_multiplier=1,
    result_extended=True,
    broker_connection_retry_on_startup=True,
)


@celery.task(name="bench.noop")
def noop(value: int) -> int:
    return value


@celery.task(name="bench.total")
def total(values: list[int]) -> int:
    return sum(values)
