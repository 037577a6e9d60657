"""The baseline: plain Celery tasks on the same Redis, with no durability at all."""

from __future__ import annotations

import os
import uuid
from functools import cache

import openai
import redis
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


@cache
def _sdk() -> openai.OpenAI:
    return openai.OpenAI(base_url=os.environ["MODEL_SERVER_URL"], api_key="bench")


@cache
def _streams() -> redis.Redis:
    return redis.Redis.from_url(REDIS_URL)


@celery.task(name="bench.agent_turn")
def agent_turn(instructions: str, message: str) -> str:
    """A turn with no durability: the same streamed request, each chunk to a Redis Stream, the text back."""
    key = f"bench.baseline.stream:{uuid.uuid4().hex}"
    messages = [{"role": "system", "content": instructions}, {"role": "user", "content": message}]
    text = []
    stream = _sdk().chat.completions.create(
        model="bench", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text.append(chunk.choices[0].delta.content)
            _streams().xadd(key, {"text": chunk.choices[0].delta.content})
    _streams().expire(key, 60)
    return "".join(text)
