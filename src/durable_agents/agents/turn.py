"""Agent turns on the orchestration engine: each turn an instance of its own, holding its session's lock.

A caller starts the turn (`@turn:CORRELATION`) itself; the turn locks its session's entity
(`proxy.session_entity`) for as long as it runs, so a session's turns run one at a time, in the
order they asked, and a session between turns is only a row. An idle session's lock is taken in
the turn's first step (`store/entity_locks`). The turn calls the model and the tools as
activities, so every call is a checkpoint: a crash resumes after the last finished call, and
nothing that finished runs twice.

Sessions from before turns were instances of their own are a long-lived orchestration that takes
one "turn" event at a time and runs it as a child (`make_agent_session`); it stays registered so
that such a session runs the turns it holds, each of them then under the session's lock too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import ids
from ..errors import FailureDetails, StructuredOutputError, TaskFailedError, ToolLoopError
from ..orchestrator.context import OrchestrationContext
from ..orchestrator.tasks import MappedTask, Task
from .approvals import decide_calls, rejection_text
from .proxy import AGENT_TURN, response_event, session_entity
from .tools import tool_output

if TYPE_CHECKING:
    from ..app import DurableApp
    from .agent import Agent

MODEL_CALL = "durable_agents.agent_model_call"
TOOL_CALL = "durable_agents.agent_tool_call"
MCP_CALL = "durable_agents.agent_mcp_call"
COMMIT_TURN = "durable_agents.agent_commit_turn"
STREAM_ERROR = "durable_agents.agent_stream_error"
#: The calls that go to the agent's queue (`Agent(queue=...)`); those run in the step need no queue.
ROUTED_CALLS = (MODEL_CALL, TOOL_CALL, MCP_CALL, STREAM_ERROR)


def routed_call(name: str, queue_role: str | None) -> str:
    """The activity that runs agent call `name` on `queue_role`: `name` itself on the agents queue, else
    `name:QUEUE`, registered for that queue. The queue is in the activity's name, so the work item's row
    says where it goes, to the step that publishes it and to the sweeper that sends it again alike."""
    return name if queue_role in (None, "agents") else f"{name}:{queue_role}"


def call_of(activity: str) -> tuple[str, str]:
    """The agent call and queue role of a routed activity name (`routed_call`'s inverse)."""
    name, _, role = activity.partition(":")
    return name, role or "agents"


def refuse_operations(state: Any, operation: str, input: Any) -> Any:
    """A session's entity: its lock orders the session's turns; it has no operations."""
    raise ValueError(f"an agent session's entity has no operations (got {operation!r}); it only orders the turns")


def make_agent_session(app: DurableApp) -> Callable[[OrchestrationContext], Any]:
    def agent_session(context: OrchestrationContext) -> Any:
        """One turn per execution; waiting turn requests are carried over by continue_as_new, in order.
        (Sessions from before turns were started by their callers; see the module's docstring.)"""
        request = yield context.wait_for_external_event("turn")
        correlation_id = request["correlation_id"]
        # The turn's calls go to the agent's queue as it is when the turn starts; kept in the turn's input,
        # so that a turn in flight across a deploy that moves the agent replays the calls it recorded.
        agent = app.agents.get(request["agent"])
        # Under the session's lock, as turns started by their callers run: the two kinds then take turns.
        turn = {**request, "queue": agent.queue_role if agent is not None else None, "session_lock": True}
        try:
            response = yield context.call_sub_orchestrator(
                AGENT_TURN, input=turn, instance_id=ids.agent_turn_instance_id(correlation_id)
            )
        except TaskFailedError as error:
            response = {"error": error.details.to_json(), "correlation_id": correlation_id}
        if request.get("reply_to"):
            context.send_event(request["reply_to"], response_event(correlation_id), response)
        context.continue_as_new(context.get_input())

    return agent_session


def _settled(value: str) -> Task[str]:
    task: Task[str] = Task()
    task._complete(value)
    return task


def _tool_task(
    context: OrchestrationContext,
    agent: Agent,
    correlation_id: str,
    call: dict[str, Any],
    mcp_server: str | None,
    decision: dict[str, Any] | None,
    queue_role: str | None,
) -> Task[str]:
    """A task for one tool call whose value is what the model reads back; a failure becomes an error text.

    `decision` is a person's (or a timeout's) answer for a call that needed approval: a rejection is
    read back as such, an approval may carry edited arguments."""
    name = call["function"]["name"]
    spec = agent.tools.get(name)
    if spec is None and mcp_server is None:
        offered = [*agent.tools, *(f"the tools of MCP server {s!r}" for s in agent.mcp_servers)]
        return _settled(f"error: there is no tool named {name!r}; available tools: {', '.join(offered) or 'none'}")
    if decision is not None and not decision["approved"]:
        return _settled(rejection_text(name, decision))
    edited = decision.get("arguments") if decision is not None else None
    raw = edited if edited is not None else (call["function"].get("arguments") or "{}")
    inner: Task[Any]
    if spec is None:
        try:
            arguments = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError as error:
            return _settled(f"error: invalid arguments for tool {name!r}: {error}")
        inner = context.call_activity(
            routed_call(MCP_CALL, queue_role),
            input={
                "agent": agent.name,
                "server": mcp_server,
                "tool": name,
                "arguments": arguments,
                "correlation_id": correlation_id,
                "tool_call_id": call["id"],
            },
        )
    else:
        try:
            arguments = spec.parse_arguments(raw)
        except ValueError as error:
            return _settled(f"error: {error}")
        if spec.kind == "inline":
            inner = context.call_activity(
                routed_call(TOOL_CALL, queue_role), input={"agent": agent.name, "tool": name, "arguments": arguments}
            )
        elif spec.kind == "activity":
            inner = context.call_activity(spec.target, input=arguments)
        else:
            inner = context.call_sub_orchestrator(spec.target, input=arguments)

    def failed(error: BaseException) -> str:
        details = error.details if isinstance(error, TaskFailedError) else error
        return f"error: tool {name!r} failed: {details}"

    return MappedTask(inner, tool_output, on_error=failed)


def make_agent_turn(app: DurableApp) -> Callable[[OrchestrationContext], Any]:
    def agent_turn(context: OrchestrationContext) -> Any:
        request = context.get_input()
        if "queue" not in request:
            # Started by a caller that does not host the agent: its calls go where this worker's registry
            # says. (A turn replayed after a deploy that moved the agent to another queue diverges.)
            agent = app.agents.get(request["agent"])
            request = {**request, "queue": agent.queue_role if agent is not None else None}
        if not request.get("session_lock"):  # a turn from before sessions were entities
            return (yield from guarded_turn(context, request))
        with (yield context.lock_entities(session_entity(request["agent"], request["session"]))):
            return (yield from guarded_turn(context, request))

    def guarded_turn(context: OrchestrationContext, request: dict[str, Any]) -> Any:
        try:
            return (yield from run_turn(context, request))
        except Exception as error:
            # Readers of the response stream learn of the failure too, then the turn fails as it would.
            failure = FailureDetails.from_exception(error).to_json()
            yield context.call_activity(
                routed_call(STREAM_ERROR, request.get("queue")), input={**_identity(request), "error": failure}
            )
            raise

    def run_turn(context: OrchestrationContext, request: dict[str, Any]) -> Any:
        agent = app.agent(request["agent"])
        turn: list[dict[str, Any]] = list(request["messages"])
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        rounds = 0
        corrected = False
        while True:
            reply = yield context.call_activity(
                routed_call(MODEL_CALL, request.get("queue")),
                input={
                    **_identity(request),
                    "messages": turn,
                    "response_format": request.get("response_format"),
                    # A corrective round replaces the reply streamed before it.
                    "restart_stream": corrected and turn[-1]["role"] == "user",
                },
            )
            for key in usage:
                usage[key] += int(reply["usage"].get(key, 0))
            message = {**reply["message"], "usage": reply["usage"]}
            turn.append(message)
            calls = message.get("tool_calls") or []
            if calls:
                rounds += 1
                if rounds > agent.max_tool_rounds:
                    raise ToolLoopError(
                        f"agent {agent.name!r} asked for tools in more than {agent.max_tool_rounds} rounds of "
                        "one turn; raise max_tool_rounds or make its instructions say when to stop"
                    )
                mcp_tools: dict[str, str] = reply.get("mcp_tools") or {}
                decisions = yield from decide_calls(context, agent, _identity(request), calls, mcp_tools)
                outputs = yield [
                    _tool_task(
                        context,
                        agent,
                        request["correlation_id"],
                        call,
                        mcp_tools.get(call["function"]["name"]),
                        decisions.get(call["id"]),
                        request.get("queue"),
                    )
                    for call in calls
                ]
                for call, output in zip(calls, outputs, strict=True):
                    turn.append({"role": "tool", "tool_call_id": call["id"], "content": output})
                continue
            if reply.get("invalid"):
                schema_name = request["response_format"]["name"]
                if corrected:
                    raise StructuredOutputError(
                        f"agent {agent.name!r} twice replied with output that is not a valid {schema_name}: "
                        f"{reply['invalid']}"
                    )
                corrected = True
                turn.append(
                    {
                        "role": "user",
                        "content": f"Your reply is not a valid {schema_name}: {reply['invalid']}. "
                        "Reply again with only a JSON object that matches the schema.",
                    }
                )
                continue
            break
        yield context.call_activity(
            COMMIT_TURN, input={**_identity(request), "messages": turn, "text": message.get("content") or ""}
        )
        return {
            "agent": agent.name,
            "session": request["session"],
            "correlation_id": request["correlation_id"],
            "text": message.get("content") or "",
            "messages": turn,
            "usage": usage,
        }

    return agent_turn


def _identity(request: dict[str, Any]) -> dict[str, Any]:
    """What every activity of a turn needs to know about it."""
    return {
        "agent": request["agent"],
        "session": request["session"],
        "correlation_id": request["correlation_id"],
        "orchestration_instance_id": request.get("reply_to"),
    }
