"""A small MCP server for the tests: stdio by default, streamable HTTP with `http PORT`.

Each call writes the idempotency key it was sent (the request's `_meta`) under $DA_TEST_EFFECTS_DIR, so a
test can check that every call carried one and ran once.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("durable-agents-test-tools")


@server.tool()
def add(a: int, b: int, ctx: Context) -> str:
    """Add two whole numbers."""
    key = dict(ctx.request_context.meta or {}).get("idempotency_key", "")
    effects = Path(os.environ.get("DA_TEST_EFFECTS_DIR", "/tmp/durable-agents-effects"))
    effects.mkdir(parents=True, exist_ok=True)
    with (effects / f"mcp-add-{a}-{b}").open("a") as f:
        f.write(f"{key}\n")
    return f"{a} + {b} = {a + b}"


@server.tool()
def fail(reason: str) -> str:
    """A tool that always fails."""
    raise ToolError(f"it failed: {reason}")  # an expected failure: the client reads its message


if __name__ == "__main__":
    if sys.argv[1:2] == ["http"]:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
