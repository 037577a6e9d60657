"""Spans (GenAI semantic conventions) and metrics of an agent's model calls, tool calls and turns."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

from ..telemetry.metrics import labelled, metrics
from ..telemetry.tracing import SpanKind, span

#: The provider the `openai` SDK speaks for (OpenAI and compatible endpoints alike).
PROVIDER = "openai"


class ModelCall:
    """What a model call reports back to its span and metrics once it has a reply."""

    def __init__(self) -> None:
        self.usage: dict[str, int] | None = None


@contextmanager
def model_call(agent: str, model: str, endpoint: str) -> Iterator[ModelCall]:
    """A `chat {model}` span around one call to the model, and its count, latency and tokens."""
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": PROVIDER,
        "gen_ai.system": PROVIDER,
        "gen_ai.request.model": model,
        "gen_ai.agent.name": agent,
        "server.address": urlparse(endpoint).hostname or endpoint,
    }
    call = ModelCall()
    recorded = metrics()
    clock = time.perf_counter()
    outcome = "error"
    try:
        with span(f"chat {model}", attributes, kind=SpanKind.CLIENT) as current:
            yield call
            usage = call.usage or {}
            input_tokens, output_tokens = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
            current.set_attribute("gen_ai.usage.input_tokens", input_tokens)
            current.set_attribute("gen_ai.usage.output_tokens", output_tokens)
            outcome = "ok"
            labelled(recorded.model_tokens, agent, model, "input").inc(input_tokens)
            labelled(recorded.model_tokens, agent, model, "output").inc(output_tokens)
    finally:
        labelled(recorded.model_calls, agent, model, outcome).inc()
        labelled(recorded.model_call_seconds, agent, model).observe(time.perf_counter() - clock)


@contextmanager
def tool_call(tool: str, description: str) -> Iterator[Any]:
    """An `execute_tool {tool}` span around one tool function."""
    attributes = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool, "gen_ai.tool.type": "function"}
    if description:
        attributes["gen_ai.tool.description"] = description[:200]
    with span(f"execute_tool {tool}", attributes) as current:
        yield current


def turn_ended(agent: str, outcome: str) -> None:
    """Count a turn that committed its reply ("completed") or failed ("failed")."""
    labelled(metrics().turns, agent, outcome).inc()


def stream_chunk(agent: str) -> None:
    labelled(metrics().stream_chunks, agent).inc()


@contextmanager
def invoke_agent(agent: str, session: str) -> Iterator[Any]:
    """The client's span of one agent run: the parent of the turn, its model calls and tools."""
    attributes = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent, "durable.session": session}
    with span(f"invoke_agent {agent}", attributes, kind=SpanKind.CLIENT) as current:
        yield current
