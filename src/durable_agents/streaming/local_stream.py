"""Response streams inside one process, for embedded mode: the few Redis Stream commands the writer
and reader use, on a dict and a condition variable, with the same entry ids and cursor rules."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from typing import Any

#: The REDIS_URL of embedded mode: streams (and model slots) live in this process.
LOCAL_URL = "memory://"

Entry = tuple[str, dict[str, str]]


def _id_key(entry_id: str) -> tuple[int, int]:
    millis, _, seq = entry_id.partition("-")
    return int(millis), int(seq or 0)


class LocalStreams:
    """A process-wide stand-in for Redis Streams (XADD, XREAD with blocking, XREVRANGE, EXPIRE)."""

    def __init__(self) -> None:
        self._streams: dict[str, list[Entry]] = {}
        self._expires: dict[str, float] = {}
        self._last_id = (0, 0)
        self._changed = threading.Condition()

    def _live(self, key: str) -> list[Entry] | None:
        expires = self._expires.get(key)
        if expires is not None and expires <= time.monotonic():
            self._streams.pop(key, None)
            self._expires.pop(key, None)
        return self._streams.get(key)

    def xadd(self, key: str, fields: Mapping[str, Any]) -> str:
        with self._changed:
            millis = int(time.time() * 1000)
            last_millis, last_seq = self._last_id
            self._last_id = (millis, 0) if millis > last_millis else (last_millis, last_seq + 1)
            entry_id = f"{self._last_id[0]}-{self._last_id[1]}"
            stream = self._live(key)
            if stream is None:
                stream = self._streams[key] = []
            stream.append((entry_id, {name: str(value) for name, value in fields.items()}))
            self._changed.notify_all()
            return entry_id

    def xlen(self, key: str) -> int:
        with self._changed:
            return len(self._live(key) or [])

    def exists(self, key: str) -> int:
        with self._changed:
            return int(self._live(key) is not None)

    def expire(self, key: str, seconds: float) -> bool:
        with self._changed:
            if self._live(key) is None:
                return False
            self._expires[key] = time.monotonic() + seconds
            return True

    def xrevrange(self, key: str, count: int = 1) -> list[Entry]:
        with self._changed:
            return list(reversed((self._live(key) or [])[-count:]))

    def xread(self, streams: Mapping[str, str], count: int = 100, block: int | None = None) -> list[Any]:
        """Entries after each cursor, as Redis (RESP2) shapes them; waits up to `block` ms for some."""
        deadline = None if block is None else time.monotonic() + block / 1000
        with self._changed:
            while True:
                reply = []
                for key, cursor in streams.items():
                    after = _id_key(cursor)
                    entries = [e for e in self._live(key) or [] if _id_key(e[0]) > after][:count]
                    if entries:
                        reply.append([key, entries])
                remaining = None if deadline is None else deadline - time.monotonic()
                if reply or remaining is None or remaining <= 0:
                    return reply
                self._changed.wait(remaining)

    def pipeline(self) -> _Pipeline:
        return _Pipeline(self)


class _Pipeline:
    """Queued commands run on `execute()`; one lock round is enough in-process."""

    def __init__(self, streams: LocalStreams) -> None:
        self._streams = streams
        self._calls: list[tuple[str, tuple[Any, ...]]] = []

    def xadd(self, key: str, fields: Mapping[str, Any]) -> None:
        self._calls.append(("xadd", (key, fields)))

    def expire(self, key: str, seconds: float) -> None:
        self._calls.append(("expire", (key, seconds)))

    def xlen(self, key: str) -> None:
        self._calls.append(("xlen", (key,)))

    def execute(self) -> list[Any]:
        return [getattr(self._streams, name)(*args) for name, args in self._calls]


class AsyncLocalStreams:
    """The reader's asyncio view: blocking reads run in a thread, so the event loop stays free."""

    def __init__(self, streams: LocalStreams) -> None:
        self._streams = streams

    async def xread(self, streams: Mapping[str, str], count: int = 100, block: int | None = None) -> list[Any]:
        return await asyncio.to_thread(self._streams.xread, streams, count, block)

    async def exists(self, key: str) -> int:
        return self._streams.exists(key)

    async def aclose(self) -> None:
        return None


#: The one store of this process, shared by every app and client in it.
local_streams = LocalStreams()
