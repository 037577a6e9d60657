"""The worker side of MCP tools: one connection per server per process, kept on one background event loop.

A stdio server is started once per worker process and kept (starting one costs about half a second);
a connection that breaks is opened again on the next use. The tools a server lists are kept with its
connection and offered to the model on every call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from ..errors import ConfigurationError
from .mcp import MCPServer

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Seconds to wait for a server to start and answer its handshake.
CONNECT_TIMEOUT = 60.0


def _mcp() -> Any:
    try:
        import mcp
    except ImportError:
        raise ConfigurationError(
            "MCP tools need the `mcp` package on the workers: pip install 'durable-agents[mcp]'"
        ) from None
    return mcp


class _Connection:
    """One open MCP client session, entered and left by its own task (as anyio wants)."""

    def __init__(self, server: MCPServer) -> None:
        self.server = server
        self.client: Any = None
        self.tools: list[dict[str, Any]] | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._keep(ready))
        await asyncio.wait_for(ready, CONNECT_TIMEOUT)

    async def _keep(self, ready: asyncio.Future[None]) -> None:
        mcp = _mcp()
        server = self.server
        target: Any = server.url
        if server.transport == "stdio":
            from mcp.client.stdio import stdio_client

            parameters = mcp.StdioServerParameters(
                command=server.command, args=list(server.args), env=dict(server.env or {}) or None, cwd=server.cwd
            )
            # The server's stderr goes to the worker's own (Celery swaps sys.stderr for a proxy with no file).
            target = stdio_client(parameters, errlog=sys.__stderr__ or sys.stderr)
        try:
            async with mcp.Client(target, cache=None) as client:
                self.client = client
                ready.set_result(None)
                await self._stop.wait()
        except BaseException as error:  # the waiting caller hears why; a later use reconnects
            if not ready.done():
                ready.set_exception(error)
            else:
                log.warning("MCP server %r disconnected: %s", server.name, error)
        finally:
            self.client = None

    @property
    def alive(self) -> bool:
        return self.client is not None and self._task is not None and not self._task.done()

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)


class MCPConnections:
    """Every MCP connection of this process; safe to call from any thread (and from a forked child)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connections: dict[str, _Connection] = {}
        self._opening: dict[str, asyncio.Lock] = {}

    def _run(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                # A forked child cannot use its parent's loop thread: it starts its own, and its own servers.
                self._pid = os.getpid()
                self._loop = asyncio.new_event_loop()
                self._connections = {}
                self._opening = {}
                threading.Thread(target=self._loop.run_forever, name="mcp-connections", daemon=True).start()
            loop = self._loop
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout)

    async def _connection(self, server: MCPServer) -> _Connection:
        lock = self._opening.setdefault(server.name, asyncio.Lock())
        async with lock:
            connection = self._connections.get(server.name)
            if connection is None or not connection.alive or connection.server != server:
                if connection is not None:
                    await connection.close()
                connection = _Connection(server)
                try:
                    await connection.open()
                except Exception as error:
                    raise ConnectionError(
                        f"could not connect to MCP server {server.name!r} ({server!r}): {error}"
                    ) from error
                self._connections[server.name] = connection
            return connection

    def list_tools(self, server: MCPServer) -> list[dict[str, Any]]:
        """The server's tools as `{name, description, input_schema}`, listed once per connection."""

        async def listing() -> list[dict[str, Any]]:
            connection = await self._connection(server)
            if connection.tools is None:
                tools: list[dict[str, Any]] = []
                cursor: str | None = None
                while True:
                    page = await connection.client.list_tools(cursor=cursor)
                    tools += [
                        {"name": t.name, "description": t.description or "", "input_schema": t.input_schema}
                        for t in page.tools
                    ]
                    cursor = page.next_cursor
                    if cursor is None:
                        break
                connection.tools = tools
            return connection.tools

        return self._run(listing(), CONNECT_TIMEOUT * 2)

    def call_tool(self, server: MCPServer, tool: str, arguments: dict[str, Any], idempotency_key: str) -> str:
        """Call `tool` and return what the model reads back (an `error: ...` text if the tool failed)."""

        async def call() -> Any:
            connection = await self._connection(server)
            return await connection.client.call_tool(
                tool, arguments, read_timeout_seconds=server.call_timeout, meta={"idempotency_key": idempotency_key}
            )

        result = self._run(call(), CONNECT_TIMEOUT + server.call_timeout)
        return result_text(tool, result)


def result_text(tool: str, result: Any) -> str:
    parts = [
        item.text if getattr(item, "type", None) == "text" else item.model_dump_json(exclude_none=True)
        for item in result.content
    ]
    text = "\n".join(parts)
    if not parts and result.structured_content is not None:
        text = json.dumps(result.structured_content)
    return f"error: tool {tool!r} failed: {text}" if result.is_error else text


#: This process's connections (a worker process's, or a prefork child's once it forked).
connections = MCPConnections()
