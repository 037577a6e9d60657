"""Following an agent's response stream as Server-Sent Events, resumable with `Last-Event-ID`.

The SSE ids are the Redis Stream entry ids, so a reconnecting client resumes exactly after the last
event it saw: no gap, no duplicate.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from ..config import Settings
from ..connections import async_redis_client, redis_ssl_options
from ..errors import AgentRunError, StreamNotFoundError, WaitTimeoutError
from ..failures import service_failure
from ..streaming.local_stream import LOCAL_URL, local_streams
from ..streaming.redis_stream import StreamChunk, read_stream, stream_key
from .context import STREAM_ROUTE, ApiContext
from .schemas import CorrelationId, errors

log = logging.getLogger(__name__)

#: A comment line this often keeps proxies from closing a quiet connection.
KEEPALIVE_SECONDS = 15.0
#: A stream with no new entry for this long is closed; the client reconnects with Last-Event-ID.
IDLE_SECONDS = 300.0
_CURSOR = r"^(0|[0-9]{1,20}-[0-9]{1,20})$"
_END = object()


def _entry_id(cursor: str) -> tuple[int, int]:
    milliseconds, _, sequence = cursor.partition("-")
    return int(milliseconds), int(sequence or 0)


def _event(name: str, data: dict[str, Any], event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _chunk_event(chunk: StreamChunk) -> str:
    data = {"kind": chunk.kind, "text": chunk.text, "seq": chunk.seq, "timestamp": chunk.timestamp}
    return _event(chunk.kind, data, chunk.cursor)


def _final_event(outcome: BaseException) -> str:
    if isinstance(outcome, AgentRunError):
        data = {"code": "agent_run_failed", "message": str(outcome), "error_type": outcome.details.error_type}
    elif isinstance(outcome, WaitTimeoutError):
        data = {"code": "timeout", "message": f"{outcome}; reconnect with Last-Event-ID to go on waiting"}
    else:
        log.error("reading a response stream failed", exc_info=outcome)
        data = {"code": "internal_error", "message": "reading the stream failed; reconnect with Last-Event-ID"}
    return _event("error", data)


async def _finished_before(settings: Settings, key: str, cursor: str) -> bool:
    """True if the stream ended at or before `cursor`; raises StreamNotFoundError if it is gone."""
    if settings.redis_url == LOCAL_URL:  # embedded mode: the streams live in this process
        last: Any = local_streams.xrevrange(key, count=1)
    else:
        client = async_redis_client(settings, decode_responses=True)
        try:
            last = await client.xrevrange(key, count=1)
        finally:
            await client.aclose()
    if not last:
        raise StreamNotFoundError(key)
    last_id, fields = last[0]
    return fields.get("type") in {"complete", "error"} and _entry_id(cursor) >= _entry_id(last_id)


def stream_routes(context: ApiContext) -> APIRouter:
    api = APIRouter(route_class=context.route_class, tags=["streams"])

    @api.get(
        "/streams/{correlation_id}",
        name=context.route_name(STREAM_ROUTE),
        operation_id="follow_stream",
        response_class=StreamingResponse,
        summary="Follow an agent's response as Server-Sent Events",
        responses={
            200: {
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
                "description": "Events `chunk`, `restart`, then `complete` (or `error`); each id is a resume cursor.",
            },
            204: {"description": "The stream ended at or before Last-Event-ID: nothing more will come."},
            **errors(404, 422),
        },
    )
    async def follow_stream(
        correlation_id: CorrelationId,
        last_event_id: Annotated[
            str | None, Header(pattern=_CURSOR, description="Resume after this event id (sent by EventSource).")
        ] = None,
        cursor: Annotated[
            str | None, Query(pattern=_CURSOR, description="Resume after this event id (for clients without headers).")
        ] = None,
        start_timeout: Annotated[
            float, Query(ge=0, le=60, description="Seconds to wait for a run that has not started streaming yet.")
        ] = 10.0,
    ) -> Response:
        settings = context.settings
        key = stream_key(settings.queue_prefix, settings.taskhub, correlation_id)
        position = last_event_id or cursor or "0"
        if position != "0" and await _finished_before(settings, key, position):
            return Response(status_code=204)  # EventSource stops reconnecting on 204
        if position == "0" and not await run_in_threadpool(context.agents.reply_exists, correlation_id):
            raise StreamNotFoundError(key)  # no such turn: nothing to wait for
        queue: asyncio.Queue[object] = asyncio.Queue(maxsize=200)

        async def pump() -> None:
            try:
                async for chunk in read_stream(
                    settings.redis_url,
                    key,
                    cursor=position,
                    start_timeout=start_timeout,
                    idle_timeout=IDLE_SECONDS,
                    connection_options=redis_ssl_options(settings, settings.redis_url),
                ):
                    await queue.put(chunk)
                await queue.put(_END)
            except Exception as error:
                await queue.put(error)

        reader = asyncio.create_task(pump())
        first: object = None
        if position == "0":
            # Answer 404 (not an empty event stream) for a run that never starts streaming, 503 when Redis is down.
            first = await queue.get()
            if isinstance(first, StreamNotFoundError) or (  # 404 or 503, not a 200 with an error event
                isinstance(first, Exception) and service_failure(first) is not None
            ):
                reader.cancel()
                raise first

        async def events() -> AsyncIterator[str]:
            try:
                yield "retry: 2000\n\n"
                item = first
                while True:
                    if item is _END:
                        return
                    if isinstance(item, StreamChunk):
                        yield _chunk_event(item)
                        if item.kind == "complete":
                            return
                    elif isinstance(item, BaseException):
                        yield _final_event(item)
                        return
                    try:
                        item = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                    except TimeoutError:
                        item = None
                        yield ": keep-alive\n\n"
            finally:
                reader.cancel()

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    return api
