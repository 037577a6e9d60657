"""Response callbacks: who hears an agent's reply as it streams, and its final response or failure.

A callback implements any of `on_chunk(context, chunk)`, `on_restart(context)`,
`on_response(context, response)`, `on_error(context, error)`, or the async-iterator form
`handle_agent_response(context, response_stream)`. A failing callback is logged, never fatal.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import observe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentCallbackContext:
    """Whose reply this is: the agent, session, turn and, inside an orchestration, the instance."""

    taskhub: str
    agent: str
    session: str
    correlation_id: str
    orchestration_instance_id: str | None
    attempt: int

    @property
    def timestamp(self) -> str:
        return datetime.now(UTC).isoformat()


class AgentResponseCallback:
    """Base class with no-op hooks; override what you need (duck typing works as well)."""

    def on_chunk(self, context: AgentCallbackContext, chunk: str) -> None: ...

    def on_restart(self, context: AgentCallbackContext) -> None: ...

    def on_response(self, context: AgentCallbackContext, response: dict[str, Any]) -> None: ...

    def on_error(self, context: AgentCallbackContext, error: dict[str, Any]) -> None: ...


_END = object()


class _IteratorFeed:
    """Feeds chunks to an async `handle_agent_response(context, stream)` running on its own thread."""

    def __init__(self, callback: Any, context: AgentCallbackContext) -> None:
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._run, args=(callback, context), daemon=True)
        self._thread.start()

    def _run(self, callback: Any, context: AgentCallbackContext) -> None:
        try:
            asyncio.run(callback.handle_agent_response(context, self._chunks()))
        except Exception:
            log.exception("response callback %r failed; the turn goes on", callback)

    async def _chunks(self) -> AsyncIterator[str]:
        while True:
            item = await asyncio.to_thread(self._queue.get)
            if item is _END:
                return
            yield item

    def put(self, chunk: str) -> None:
        self._queue.put(chunk)

    def close(self, timeout: float = 30.0) -> None:
        self._queue.put(_END)
        self._thread.join(timeout)


class CallbackFanout:
    """Hands each event to every callback, shielding the turn from their failures."""

    def __init__(self, callbacks: Sequence[Any], context: AgentCallbackContext) -> None:
        self._callbacks = list(callbacks)
        self._context = context
        # Started with the first chunk: a fanout that only reports a response or an error (the commit
        # and failure activities) must not leave a thread waiting for chunks that never come.
        self._feeds: list[_IteratorFeed] | None = None

    def _call(self, hook: str, *args: Any) -> None:
        for callback in self._callbacks:
            method = getattr(callback, hook, None)
            if method is None:
                continue
            try:
                method(self._context, *args)
            except Exception:
                log.exception("response callback %r failed in %s; the turn goes on", callback, hook)

    def chunk(self, text: str) -> None:
        observe.stream_chunk(self._context.agent)
        self._call("on_chunk", text)
        if self._feeds is None:
            self._feeds = [
                _IteratorFeed(callback, self._context)
                for callback in self._callbacks
                if hasattr(callback, "handle_agent_response")
            ]
        for feed in self._feeds:
            feed.put(text)

    def restart(self) -> None:
        self._call("on_restart")

    def close(self) -> None:
        for feed in self._feeds or ():
            feed.close()

    def response(self, response: dict[str, Any]) -> None:
        self._call("on_response", response)

    def error(self, error: dict[str, Any]) -> None:
        self._call("on_error", error)
