"""MCP servers as agent tools: where a server is (a command over stdio, or a streamable HTTP URL).

The server's tools are listed by the worker and offered to the model with their own JSON schemas;
each call the model makes runs as a durable activity of the turn, with an idempotency key in the
request's `_meta`. Needs the `mcp` extra (`pip install 'durable-agents[mcp]'`) on the workers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Literal
from urllib.parse import urlparse

from .approvals import ApprovalPolicy, as_policy

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class MCPServer:
    """An MCP server whose tools an agent may call: `MCPServer.stdio(...)` or `MCPServer.http(...)`."""

    name: str
    transport: Literal["stdio", "http"]
    command: str = ""
    args: tuple[str, ...] = ()
    env: Mapping[str, str] | None = None
    cwd: str | None = None
    url: str = ""
    #: Put before each tool's name as the model sees it, to keep two servers' tools apart.
    prefix: str = ""
    approval: ApprovalPolicy | None = None
    #: Seconds one tool call may take before it fails (the model then reads the error).
    call_timeout: float = 300.0

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(
                f"MCP server name {self.name!r} is invalid: use 1-64 letters, digits, '_', '.' or '-' (pass name=...)"
            )
        if self.call_timeout <= 0:
            raise ValueError("MCPServer(call_timeout=...) must be positive")

    @classmethod
    def stdio(
        cls,
        command: str,
        args: Sequence[str] = (),
        *,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        prefix: str = "",
        requires_approval: bool | ApprovalPolicy = False,
        call_timeout: float = 300.0,
    ) -> MCPServer:
        """A server the worker starts as `command args...` and talks to over its stdin and stdout (one
        process per worker process, started on first use and kept)."""
        if not command:
            raise ValueError("MCPServer.stdio needs the command that starts the server")
        default = PurePath(next((a for a in args if not a.startswith("-")), command)).stem
        server_name = name or re.sub(r"[^A-Za-z0-9_.-]", "-", default)
        return cls(
            name=server_name,
            transport="stdio",
            command=command,
            args=tuple(args),
            env=dict(env) if env is not None else None,
            cwd=cwd,
            prefix=prefix,
            approval=as_policy(requires_approval, f"MCP server {server_name!r}"),
            call_timeout=call_timeout,
        )

    @classmethod
    def http(
        cls,
        url: str,
        *,
        name: str | None = None,
        prefix: str = "",
        requires_approval: bool | ApprovalPolicy = False,
        call_timeout: float = 300.0,
    ) -> MCPServer:
        """A server at a streamable HTTP endpoint, such as `http://127.0.0.1:8000/mcp`."""
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"MCPServer.http needs an http(s) URL such as http://127.0.0.1:8000/mcp, got {url!r}")
        server_name = name or re.sub(r"[^A-Za-z0-9_.-]", "-", parsed.netloc)
        return cls(
            name=server_name,
            transport="http",
            url=url,
            prefix=prefix,
            approval=as_policy(requires_approval, f"MCP server {server_name!r}"),
            call_timeout=call_timeout,
        )

    def offered_name(self, tool: str) -> str:
        return f"{self.prefix}{tool}"

    def __repr__(self) -> str:
        where = self.url if self.transport == "http" else " ".join([self.command, *self.args])
        return f"<MCPServer {self.name!r} {self.transport} {where}>"
