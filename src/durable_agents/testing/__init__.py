"""An OpenAI-compatible chat model served over HTTP for tests and demos: scripted rules, deterministic defaults, faults.

    with TestModelServer() as server:
        server.control.add_rule(match={"last_user_contains": "weather"},
                                reply={"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]})
        client = OpenAI(base_url=server.url, api_key="test")

Run one for other processes with `python -m durable_agents.testing --port 8089` and steer it with
`ModelServerControl("http://127.0.0.1:8089/v1")`.

`replay(app, history)` checks in a test that recorded histories still replay against the app's code.
"""

from .control import ModelServerControl, ModelServerControlError
from .replaying import replay
from .rules import Fault, Match, Reply, Rule, ToolCallReply
from .server import TestModelServer, serve

__all__ = [
    "Fault",
    "Match",
    "ModelServerControl",
    "ModelServerControlError",
    "Reply",
    "Rule",
    "TestModelServer",
    "ToolCallReply",
    "replay",
    "serve",
]
