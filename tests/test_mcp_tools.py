"""MCP tools end to end: a small MCP server the tests start (stdio, and streamable HTTP), called by agents."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from durable_agents import DurableAgentClient, DurableClient
from durable_agents.testing import TestModelServer

from conftest import wait_until

pytestmark = pytest.mark.usefixtures("fresh_model")


def test_an_mcp_tool_over_stdio(agents_client: DurableClient, model_server: TestModelServer, effects_dir: Path) -> None:
    control = model_server.control
    control.add_rule(
        match={"last_user_contains": "What is 2 + 40", "last_message_role": "user"},
        reply={
            "tool_calls": [
                {"name": "add", "arguments": {"a": 2, "b": 40}},
                {"name": "fail", "arguments": {"reason": "on purpose"}},
            ]
        },
    )
    control.add_rule(match={"last_message_role": "tool"}, reply={"content": "It is 42."})
    response = DurableAgentClient(agents_client).get_agent("Calculator").run_sync("What is 2 + 40?", session="mcp")
    assert response.text == "It is 42."
    results = [m["content"] for m in response.messages if m["role"] == "tool"]
    assert results[0] == "2 + 40 = 42"
    assert results[1].startswith("error: tool 'fail' failed: ") and "it failed: on purpose" in results[1]
    # The server's own schema reached the model, and the call carried its key: the turn's and the call's.
    offered = {t["function"]["name"]: t["function"] for t in control.requests()[0]["body"]["tools"]}
    assert offered["add"]["description"] == "Add two whole numbers."
    assert offered["add"]["parameters"]["required"] == ["a", "b"]
    call_id = next(m["tool_call_id"] for m in response.messages if m["role"] == "tool")
    keys = (effects_dir / "mcp-add-2-40").read_text().split()
    assert keys == [f"{agents_client.taskhub}/turn/{response.correlation_id}/{call_id}"]


def test_an_mcp_tool_over_streamable_http(
    agents_client: DurableClient, model_server: TestModelServer, effects_dir: Path, mcp_http_url: str
) -> None:
    wait_until(lambda: _listening(mcp_http_url), timeout=30, message="the MCP server over HTTP")
    control = model_server.control
    control.add_rule(
        match={"last_message_role": "user"}, reply={"tool_calls": [{"name": "web_add", "arguments": {"a": 5, "b": 8}}]}
    )
    control.add_rule(match={"last_message_role": "tool"}, reply={"content": "It is 13."})
    # This process's app has no WebCalculator (it needs the server's URL): a client without the app serves.
    client = DurableClient(
        taskhub=agents_client.taskhub,
        database_url=agents_client.settings.database_url,
        redis_url=agents_client.settings.redis_url,
    )
    response = DurableAgentClient(client).get_agent("WebCalculator").run_sync("What is 5 + 8?", timeout=60)
    assert [m["content"] for m in response.messages if m["role"] == "tool"] == ["5 + 8 = 13"]
    offered = [t["function"]["name"] for t in control.requests()[0]["body"]["tools"]]
    assert offered == ["web_add", "web_fail"]  # the server's tools, under the agent's prefix
    assert (effects_dir / "mcp-add-5-8").read_text().count("\n") == 1


def _listening(url: str) -> bool:
    try:
        httpx.get(url, timeout=1)
    except httpx.TransportError:
        return False
    return True
