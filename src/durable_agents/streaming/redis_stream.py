"""One Redis Stream per agent response: chunk, restart, complete and error entries, read by cursor."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import redis
import redis.asyncio as aioredis

from ..agents.callbacks import AgentCallbackContext
from ..errors import AgentRunError, FailureDetails, StreamNotFoundError, WaitTimeoutError
from .local_stream import LOCAL_URL, AsyncLocalStreams, local_streams
from .writer import StreamWriter

ChunkKind = Literal["chunk", "restart", "complete"]
#: A stream nobody completes (its turn was abandoned) still goes away after this long.
IN_PROGRESS_TTL = 24 * 3600


def stream_key(prefix: str, taskhub: str, correlation_id: str) -> str:
    return f"{prefix}:{taskhub}:stream:{correlation_id}"


@dataclass(frozen=True)
class StreamChunk:
    """One entry of a response stream. Resume after it with `cursor=chunk.cursor`."""

    kind: ChunkKind
    text: str
    seq: int
    cursor: str
    timestamp: float


class RedisStreamCallback:
    """The default response callback: every chunk of a reply goes to the response's Redis Stream."""

    def __init__(
        self,
        redis_url: str,
        *,
        prefix: str = "durable_agents",
        ttl_seconds: int = 3600,
        connection_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._redis: Any = (
            local_streams
            if redis_url == LOCAL_URL
            else redis.Redis.from_url(redis_url, decode_responses=True, **(connection_options or {}))
        )
        self._prefix = prefix
        self._ttl = ttl_seconds
        self._writer = StreamWriter(self._redis)
        # The streams this process has begun to write and not yet ended.
        self._open: set[str] = set()
        self._lock = threading.Lock()

    def _add(self, context: AgentCallbackContext, fields: dict[str, Any], *, final: bool = False) -> None:
        """Queue an entry; an entry that ends the stream returns only once the stream holds it."""
        key = stream_key(self._prefix, context.taskhub, context.correlation_id)
        with self._lock:
            first = key not in self._open
            if final:
                self._open.discard(key)
            else:
                self._open.add(key)
        entry: dict[Any, Any] = {**fields, "ts": repr(time.time()), "attempt": context.attempt}
        expire = self._ttl if final else IN_PROGRESS_TTL if first else None
        self._writer.write(key, entry, expire=expire, final=final, wait=final)

    def on_chunk(self, context: AgentCallbackContext, chunk: str) -> None:
        self._add(context, {"type": "chunk", "text": chunk})

    def on_restart(self, context: AgentCallbackContext) -> None:
        self._add(context, {"type": "restart", "text": ""})

    def on_response(self, context: AgentCallbackContext, response: dict[str, Any]) -> None:
        key = stream_key(self._prefix, context.taskhub, context.correlation_id)
        with self._lock:
            writing = key in self._open  # this process streamed the reply and has not ended it
        if not writing:
            last: Any = self._redis.xrevrange(key, count=1)
            if last and last[0][1].get("type") == "complete":
                return  # the turn's commit ran again, after a crash or a failed commit: already complete
        # The text is all in the chunks before; the completion entry only ends the stream.
        self._add(context, {"type": "complete", "text": ""}, final=True)

    def on_error(self, context: AgentCallbackContext, error: dict[str, Any]) -> None:
        fields = {"type": "error", "text": "", "error_type": error["error_type"], "message": error["message"]}
        self._add(context, fields, final=True)


async def read_stream(
    redis_url: str,
    key: str,
    *,
    cursor: str = "0",
    start_timeout: float = 30.0,
    idle_timeout: float = 300.0,
    connection_options: Mapping[str, Any] | None = None,
) -> AsyncIterator[StreamChunk]:
    """Chunks after `cursor` until the completion entry; raises AgentRunError at an error entry.

    Blocks on XREAD (no polling). A stream that does not appear within `start_timeout` raises
    StreamNotFoundError; one that goes quiet for `idle_timeout` raises WaitTimeoutError.
    `connection_options` go to redis-py (TLS: see `durable_agents.connections`).
    """
    client: Any = (
        AsyncLocalStreams(local_streams)
        if redis_url == LOCAL_URL
        else aioredis.Redis.from_url(redis_url, decode_responses=True, **(connection_options or {}))
    )
    position = cursor
    seen_any = cursor != "0"
    try:
        while True:
            wait = idle_timeout if seen_any else start_timeout
            reply: Any = await client.xread({key: position}, count=100, block=max(1, int(wait * 1000)))
            if not reply:
                if not seen_any and not await client.exists(key):
                    raise StreamNotFoundError(key)
                raise WaitTimeoutError(f"the stream {key!r} has been silent for {wait:g}s; resume from {position!r}")
            seen_any = True
            for entry_id, fields in _entries(reply):
                position = entry_id
                if fields["type"] == "error":
                    details = FailureDetails(fields["error_type"], fields["message"])
                    raise AgentRunError(f"the agent's turn failed: {details}", details)
                chunk = StreamChunk(
                    kind=fields["type"],  # type: ignore[arg-type]
                    text=fields["text"],
                    seq=int(fields["seq"]),
                    cursor=position,
                    timestamp=float(fields["ts"]),
                )
                yield chunk
                if chunk.kind == "complete":
                    return
    finally:
        await client.aclose()


def _entries(reply: Any) -> list[tuple[str, dict[str, str]]]:
    """The (entry id, fields) pairs of an XREAD reply for one stream (RESP2 list or RESP3 map)."""
    streams = reply.values() if isinstance(reply, dict) else [entries for _, entries in reply]
    return [(entry_id, fields) for entries in streams for entry_id, fields in entries]
