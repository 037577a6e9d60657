"""The agent proxy inside an orchestration: `run()` is a task, the turn run as a sub-orchestration and awaited.

Pure: it only uses the orchestration context, so it replays deterministically.
"""

from __future__ import annotations

from typing import Any

from .. import ids
from ..errors import AgentRunError, FailureDetails, TaskFailedError
from ..ids import EntityId
from ..orchestrator.context import OrchestrationContext, StartIfMissing
from ..orchestrator.tasks import MappedTask, Task
from .response import AgentResponse, AgentSession, format_spec

#: The entity of each session (`session_entity`): every turn of the session runs holding its lock, so the
#: session's turns run one at a time, in the order they asked.
SESSION_ENTITY = "durable_agents.agent_session"
#: The orchestration that ran each session's turns one at a time before sessions were entities. It stays
#: registered so that a session started before the upgrade runs the turns it holds already.
SESSION_ORCHESTRATION = "durable_agents.agent_session"
AGENT_TURN = "durable_agents.agent_turn"
#: The orchestrations the engine runs for agents, which lists leave out unless asked.
INTERNAL_ORCHESTRATIONS = (AGENT_TURN, SESSION_ORCHESTRATION)
DEFAULT_SESSION = "default"
#: The change (`context.is_patched`) after which an orchestration runs an agent's turn as its child, where
#: its history from before sent the turn to the session's orchestration.
TURN_AS_CHILD = "durable_agents.turn_as_child"


def session_entity(agent: str, session_key: str) -> EntityId:
    return EntityId(SESSION_ENTITY, f"{agent}:{session_key}")


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


def turn_input(request: dict[str, Any], queue_role: str | None) -> dict[str, Any]:
    """What a turn started as its own instance takes: the request, the queue of its agent's calls when the
    starter knows it (else the worker's registry says), and that it holds its session's lock."""
    turn = {**request, "session_lock": True}
    if queue_role is not None:
        turn["queue"] = queue_role
    return turn


def _failed_turn(correlation_id: str) -> Any:
    def raise_run_error(error: BaseException) -> AgentResponse:
        details = error.details if isinstance(error, TaskFailedError) else FailureDetails.from_exception(error)
        raise AgentRunError(f"agent turn {correlation_id} failed: {details}", details)

    return raise_run_error


class OrchestrationAgent:
    """`app.get_agent(context, name)`: each `run` is a durable, checkpointed agent turn."""

    def __init__(self, context: OrchestrationContext, name: str, queue_role: str | None = None) -> None:
        self._context = context
        self.name = name
        self._queue_role = queue_role

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
        if context.is_patched(TURN_AS_CHILD):
            turn = context.call_sub_orchestrator(
                AGENT_TURN,
                input=turn_input(request, self._queue_role),
                instance_id=ids.agent_turn_instance_id(correlation_id),
            )
            return MappedTask(
                turn, lambda data: AgentResponse.from_turn(data, response_format), on_error=_failed_turn(correlation_id)
            )
        context.send_event(
            ids.agent_session_instance_id(self.name, session_key),
            "turn",
            request,
            start=StartIfMissing(SESSION_ORCHESTRATION, {"agent": self.name, "session": session_key}),
        )
        answer = context.wait_for_external_event(response_event(correlation_id))
        return MappedTask(answer, lambda data: AgentResponse.from_turn(data, response_format))
