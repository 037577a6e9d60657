"""Response callbacks: who hears an agent's reply as it streams, and its final response or failure.

A callback implements any of `on_chunk(context, chunk)`, `on_restart(context)`,
`on_response(context, response)`, `on_error(context, error)` (plain or `async def`), or the reference's
async-iterator form `handle_agent_response(context, response_stream)`. A failing callback is logged,
never fatal. Every coroutine runs on one long-lived event loop of the process (`callback_loop`), so a
callback may keep asyncio clients (a `redis.asyncio.Redis`) from one reply to the next.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from . import observe

log = logging.getLogger(__name__)

#: How long the end of a reply waits for async callbacks to finish hearing it.
CALLBACK_TIMEOUT_SECONDS = 30.0


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


@runtime_checkable
class AgentResponseCallbackProtocol(Protocol):
    """The reference's callback shape: `handle_agent_response` reads the reply's text as an async iterator
    of chunks, as the model produces them. Subclass it, or implement the method on any class."""

    async def handle_agent_response(self, context: AgentCallbackContext, response_stream: AsyncIterator[str]) -> None:
        """Hear one reply; the iterator ends when the model's answer (or this attempt at it) is complete."""


class AgentResponseCallback:
    """Base class with no-op per-event hooks; override what you need (duck typing works as well)."""

    def on_chunk(self, context: AgentCallbackContext, chunk: str) -> None: ...

    def on_restart(self, context: AgentCallbackContext) -> None: ...

    def on_response(self, context: AgentCallbackContext, response: dict[str, Any]) -> None: ...

    def on_error(self, context: AgentCallbackContext, error: dict[str, Any]) -> None: ...


class _LoopThread:
    """An event loop running forever on a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="durable-agents-callbacks", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()


_loop_lock = threading.Lock()
_loop_thread: _LoopThread | None = None
_loop_pid = 0


def _forget_loop_in_child() -> None:
    # A forked child has the parent's loop object but not its thread: it makes its own on first use.
    global _loop_lock, _loop_thread
    _loop_lock = threading.Lock()
    _loop_thread = None


os.register_at_fork(after_in_child=_forget_loop_in_child)


def callback_loop() -> asyncio.AbstractEventLoop:
    """The event loop of this process that runs every async callback, made on first use."""
    global _loop_thread, _loop_pid
    with _loop_lock:
        if _loop_thread is None or _loop_pid != os.getpid() or not _loop_thread.thread.is_alive():
            _loop_thread = _LoopThread()
            _loop_pid = os.getpid()
        return _loop_thread.loop


def _wait(future: concurrent.futures.Future[Any], callback: Any, what: str) -> None:
    try:
        future.result(CALLBACK_TIMEOUT_SECONDS)
    except concurrent.futures.TimeoutError:
        log.warning("response callback %r did not finish %s within %gs; the turn goes on", callback, what,
                    CALLBACK_TIMEOUT_SECONDS)  # fmt: skip
    except Exception:
        log.exception("response callback %r failed in %s; the turn goes on", callback, what)


_END = object()


class _IteratorFeed:
    """Feeds one reply's chunks to an async `handle_agent_response(context, stream)` on the callback loop."""

    def __init__(self, callback: Any, context: AgentCallbackContext) -> None:
        self._callback = callback
        self._loop = callback_loop()
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._future = asyncio.run_coroutine_threadsafe(
            callback.handle_agent_response(context, self._chunks()), self._loop
        )

    async def _chunks(self) -> AsyncIterator[str]:
        while True:
            item = await self._queue.get()
            if item is _END:
                return
            yield item

    def put(self, chunk: str) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, chunk)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, _END)
        _wait(self._future, self._callback, "handle_agent_response")


class CallbackFanout:
    """Hands each event to every callback, shielding the turn from their failures."""

    def __init__(self, callbacks: Sequence[Any], context: AgentCallbackContext) -> None:
        self._callbacks = list(callbacks)
        self._context = context
        # Started with the first chunk: a fanout that only reports a response or an error (the commit
        # and failure activities) must not start a reader of chunks that never come.
        self._feeds: list[_IteratorFeed] | None = None
        # Async per-chunk hooks run one after another, so they hear the chunks in order.
        self._lane: concurrent.futures.Future[Any] | None = None

    def _call(self, hook: str, *args: Any, wait: bool = False) -> None:
        for callback in self._callbacks:
            method = getattr(callback, hook, None)
            if method is None:
                continue
            try:
                result = method(self._context, *args)
            except Exception:
                log.exception("response callback %r failed in %s; the turn goes on", callback, hook)
                continue
            if inspect.isawaitable(result):
                self._in_lane(result, callback, hook)
        if wait and self._lane is not None:
            _wait(self._lane, "async hooks", "its hooks")

    def _in_lane(self, awaitable: Awaitable[Any], callback: Any, hook: str) -> None:
        previous = self._lane

        async def after_previous() -> None:
            if previous is not None:
                await asyncio.wait([asyncio.wrap_future(previous)])
            try:
                await awaitable
            except Exception:
                log.exception("response callback %r failed in %s; the turn goes on", callback, hook)

        self._lane = asyncio.run_coroutine_threadsafe(after_previous(), callback_loop())

    def chunk(self, text: str) -> None:
        observe.stream_chunk(self._context.agent)
        self._call("on_chunk", text)
        if self._feeds is None:
            self._feeds = []
            for callback in self._callbacks:
                if not hasattr(callback, "handle_agent_response"):
                    continue
                try:
                    self._feeds.append(_IteratorFeed(callback, self._context))
                except Exception:
                    log.exception("response callback %r could not start; the turn goes on", callback)
        for feed in self._feeds:
            feed.put(text)

    def restart(self) -> None:
        self._call("on_restart")

    def close(self) -> None:
        for feed in self._feeds or ():
            feed.close()
        self._feeds = None
        if self._lane is not None:
            _wait(self._lane, "async hooks", "on_chunk")

    def response(self, response: dict[str, Any]) -> None:
        self._call("on_response", response, wait=True)

    def error(self, error: dict[str, Any]) -> None:
        self._call("on_error", error, wait=True)
