"""The agent proxy inside an orchestration: `run()` is a task, sent to the session's entity and awaited.

Pure: it only uses the orchestration context, so it replays deterministically.
"""

from __future__ import annotations

from typing import Any

from .. import ids
from ..orchestrator.context import OrchestrationContext, StartIfMissing
from ..orchestrator.tasks import MappedTask, Task
from .response import AgentResponse, AgentSession, format_spec

SESSION_ENTITY = "durable_agents.agent_session"
AGENT_TURN = "durable_agents.agent_turn"
#: The orchestrations the engine runs for agents, which lists leave out unless asked.
INTERNAL_ORCHESTRATIONS = (AGENT_TURN, SESSION_ENTITY)
DEFAULT_SESSION = "default"


def response_event(correlation_id: str) -> str:
    return f"agent_response:{correlation_id}"


def user_messages(messages: Any) -> list[dict[str, Any]]:
    """Normalise what a caller passes as `messages` into chat messages; refuses an empty request."""
    if isinstance(messages, str):
        items: list[Any] = [messages]
    elif isinstance(messages, dict):
        items = [messages]
    else:
        items = list(messages or [])
    normalised: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, str):
            normalised.append({"role": "user", "content": item})
        elif isinstance(item, dict) and item.get("role") in {"user", "system", "assistant"}:
            normalised.append({"role": item["role"], "content": item.get("content")})
        else:
            raise TypeError(f"a message is a string or a {{'role': ..., 'content': ...}} dict, got {item!r}")
    if not any((m.get("content") or "").strip() for m in normalised):
        raise ValueError("an agent run needs a non-empty message")
    return normalised


def turn_request(
    *,
    agent: str,
    session_key: str,
    messages: Any,
    correlation_id: str,
    response_format: Any,
    reply_to: str | None,
) -> dict[str, Any]:
    return {
        "agent": agent,
        "session": session_key,
        "messages": user_messages(messages),
        "correlation_id": correlation_id,
        "response_format": format_spec(response_format),
        "reply_to": reply_to,
    }


class OrchestrationAgent:
    """`app.get_agent(context, name)`: each `run` is a durable, checkpointed agent turn."""

    def __init__(self, context: OrchestrationContext, name: str) -> None:
        self._context = context
        self.name = name

    def create_session(self) -> AgentSession:
        """A new conversation; the key is the same on every replay."""
        return AgentSession(self.name, self._context.new_uuid())

    def run(
        self,
        messages: Any = None,
        *,
        session: AgentSession | str | None = None,
        response_format: Any = None,
    ) -> Task[AgentResponse]:
        """A task for one turn. Without `session`, the turn runs in a fresh conversation of its own."""
        context = self._context
        correlation_id = context.new_uuid()
        session_key = str(session) if session is not None else context.new_uuid()
        request = turn_request(
            agent=self.name,
            session_key=session_key,
            messages=messages,
            correlation_id=correlation_id,
            response_format=response_format,
            reply_to=context.instance_id,
        )
        context.send_event(
            ids.agent_session_instance_id(self.name, session_key),
            "turn",
            request,
            start=StartIfMissing(SESSION_ENTITY, {"agent": self.name, "session": session_key}),
        )
        answer = context.wait_for_external_event(response_event(correlation_id))
        return MappedTask(answer, lambda data: AgentResponse.from_turn(data, response_format))
