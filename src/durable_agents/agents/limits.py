"""A concurrency limit per model shared by every worker: a Redis sorted set of slot holders."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis


class ModelSlots:
    """At most `limit` calls at once per key, across processes and machines.

    Holders are members of a sorted set scored by when they took their slot; a holder that died
    without releasing ages out after `lease` seconds, so a crash cannot leak a slot for good.
    """

    def __init__(self, redis_url: str) -> None:
        self._redis = redis.Redis.from_url(redis_url)

    @contextmanager
    def hold(self, key: str, limit: int, lease: float = 300.0) -> Iterator[None]:
        token = uuid.uuid4().hex
        released = f"{key}:released"
        while True:
            now = time.time()
            pipe = self._redis.pipeline()
            pipe.zremrangebyscore(key, "-inf", now - lease)
            pipe.zadd(key, {token: now})
            pipe.zrank(key, token)
            rank = pipe.execute()[2]
            if rank is not None and rank < limit:
                break
            self._redis.zrem(key, token)
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
