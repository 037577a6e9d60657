"""A concurrency limit per model shared by every worker: a Redis sorted set of slot holders."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import redis

# Atomic, so two callers can never both see the last free slot.
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
    redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
    return 1
end
return 0
"""


class ModelSlots:
    """At most `limit` calls at once per key, across processes and machines.

    Holders are members of a sorted set scored by when they took their slot; a holder that died
    without releasing ages out after `lease` seconds, so a crash cannot leak a slot for good.
    """

    def __init__(self, redis_url: str, connection_options: Mapping[str, Any] | None = None) -> None:
        self._redis = redis.Redis.from_url(redis_url, **(connection_options or {}))
        self._acquire = self._redis.register_script(_ACQUIRE)

    @contextmanager
    def hold(self, key: str, limit: int, lease: float = 300.0) -> Iterator[None]:
        token = uuid.uuid4().hex
        released = f"{key}:released"
        while not self._acquire(keys=[key], args=[time.time(), lease, limit, token]):
            # Wait for a release (or re-check after a second, in case a holder died).
            self._redis.blpop([released], timeout=1)
        try:
            yield
        finally:
            pipe = self._redis.pipeline()
            pipe.zrem(key, token)
            pipe.rpush(released, 1)
            pipe.ltrim(released, -limit, -1)
            pipe.expire(released, 60)
            pipe.execute()


class LocalModelSlots:
    """The same limit inside one process (embedded mode, where there is only one worker)."""

    def __init__(self) -> None:
        self._semaphores: dict[tuple[str, int], threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, key: str, limit: int, lease: float = 300.0) -> Iterator[None]:
        with self._lock:
            semaphore = self._semaphores.setdefault((key, limit), threading.BoundedSemaphore(limit))
        with semaphore:
            yield
