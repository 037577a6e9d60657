"""The agent activities: a model call, an inline tool call, and committing a turn to its session."""

from __future__ import annotations

import json
import logging
from contextlib import nullcontext
from dataclasses import replace
from importlib import import_module
from typing import TYPE_CHECKING, Any

from .. import ids
from ..registry import current_activity
from ..store import approvals, sessions
from ..store.db import single_statement, transaction
from . import observe
from .agent import Agent, Summarize
from .approvals import APPROVAL_TIMED_OUT, REQUEST_APPROVALS
from .callbacks import AgentCallbackContext, CallbackFanout
from .mcp_runtime import connections
from .tools import tool_output
from .turn import COMMIT_TURN, MCP_CALL, MODEL_CALL, ROUTED_CALLS, STREAM_ERROR, TOOL_CALL, routed_call

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ..app import DurableApp

log = logging.getLogger(__name__)


def _import_type(path: str) -> Any:
    module_name, _, qualname = path.partition(":")
    target: Any = import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def format_problem(content: str | None, response_format: dict[str, Any]) -> str | None:
    """Why `content` does not fit the requested format, or None if it does."""
    try:
        model = _import_type(response_format["type_path"])
    except Exception:  # a class the worker cannot import (defined in a function): check JSON only
        model = None
    try:
        if model is not None:
            model.model_validate_json(content or "")
        else:
            json.loads(content or "")
    except Exception as error:
        return str(error)[:2000]
    return None


def register_agent_activities(app: DurableApp) -> None:
    settings = app.settings

    def model_call(request: dict[str, Any]) -> dict[str, Any]:
        agent = app.agent(request["agent"])
        spent: list[dict[str, int]] = []
        if isinstance(agent.history, Summarize):
            history = summarised_history(agent, request["session"], spent)
        else:
            keep_last = agent.history.messages if agent.history is not None else None
            with single_statement(settings.database_url) as session:
                history = sessions.load_messages(session, settings.taskhub, agent.name, request["session"], keep_last)
        prompt = [{"role": "system", "content": agent.instructions}, *history, *_for_model(request["messages"])]
        mcp_offered = offered_mcp_tools(agent)
        tools = [spec.openai_schema() for spec in agent.tools.values()] + [schema for _, schema in mcp_offered.values()]
        client = agent.chat_client
        slots_key = f"{settings.queue_prefix}:{settings.taskhub}:model:{client.endpoint}:{client.model}"
        slot = app.model_slots.hold(slots_key, client.max_concurrency) if client.max_concurrency else nullcontext()
        fanout = callbacks_for(request)
        if request.get("restart_stream") or current_activity().attempt > 1:
            fanout.restart()  # what an earlier attempt streamed is void
        try:
            with slot, observe.model_call(agent.name, client.model, client.endpoint) as call:
                reply = client.complete(
                    prompt,
                    tools=tools or None,
                    response_format=request.get("response_format"),
                    on_text=fanout.chunk,
                    on_restart=fanout.restart,
                )
                call.usage = reply.usage
        finally:
            fanout.close()
        invalid = None
        if request.get("response_format") and not reply.message.get("tool_calls"):
            invalid = format_problem(reply.message.get("content"), request["response_format"])
        usage = {key: value + sum(u[key] for u in spent) for key, value in reply.usage.items()}
        # Which server each called MCP tool is on: the turn routes the calls by what this listing said.
        called = [call["function"]["name"] for call in reply.message.get("tool_calls") or []]
        mcp_tools = {name: mcp_offered[name][0] for name in called if name in mcp_offered}
        return {"message": reply.message, "usage": usage, "invalid": invalid, "mcp_tools": mcp_tools}

    def summarised_history(agent: Agent, session_key: str, spent: list[dict[str, int]]) -> list[dict[str, Any]]:
        policy = agent.history
        assert isinstance(policy, Summarize)
        with transaction(settings.database_url) as session:
            summary, rows = sessions.load_since_summary(session, settings.taskhub, agent.name, session_key)
        if len(rows) > policy.max_messages:
            cut = len(rows) - policy.keep_last
            while cut < len(rows) and rows[cut][1]["role"] != "user":
                cut += 1  # the recent window starts at a user message, never inside a tool exchange
            older, rows = rows[:cut], rows[cut:]
            if older:
                transcript = "\n".join(f"{m['role']}: {m.get('content') or m.get('tool_calls')}" for _, m in older)
                earlier = f"The summary so far: {summary}\n\n" if summary else ""
                reply = agent.chat_client.complete(
                    [
                        {"role": "system", "content": policy.instructions},
                        {"role": "user", "content": f"{earlier}The conversation to summarise:\n{transcript}"},
                    ]
                )
                summary = reply.message.get("content") or ""
                spent.append(reply.usage)
                with transaction(settings.database_url) as session:
                    sessions.save_summary(session, settings.taskhub, agent.name, session_key, summary, older[-1][0])
        recent = [message for _, message in rows]
        if summary:
            return [{"role": "system", "content": f"Summary of the earlier conversation: {summary}"}, *recent]
        return recent

    def tool_call(request: dict[str, Any]) -> str:
        agent = app.agent(request["agent"])
        spec = agent.tools[request["tool"]]
        try:
            with observe.tool_call(spec.name, spec.description):
                return tool_output(spec.invoke(spec.parse_arguments(request["arguments"])))
        except Exception as error:  # the model reads tool errors and may recover; a crash helps nobody
            return f"error: {type(error).__name__}: {error}"

    def mcp_call(request: dict[str, Any]) -> str:
        server = app.agent(request["agent"]).mcp_servers[request["server"]]
        key = ids.tool_call_idempotency_key(settings.taskhub, request["correlation_id"], request["tool_call_id"])
        tool = request["tool"][len(server.prefix) :]
        return connections.call_tool(server, tool, request["arguments"], key)

    def request_approvals(session: Session, request: dict[str, Any]) -> None:
        approvals.request(session, settings.taskhub, request["instance_id"], request, request["asks"])

    def approval_timed_out(session: Session, request: dict[str, Any]) -> dict[str, Any]:
        return approvals.decide_on_timeout(
            session, settings.taskhub, request["approval_id"], approve=request["approve"], reason=request["reason"]
        )

    def callbacks_for(request: dict[str, Any]) -> CallbackFanout:
        context = AgentCallbackContext(
            taskhub=settings.taskhub,
            agent=request["agent"],
            session=request["session"],
            correlation_id=request["correlation_id"],
            orchestration_instance_id=request.get("orchestration_instance_id"),
            attempt=current_activity().attempt,
        )
        return CallbackFanout([*app.response_callbacks, *app.agent_callbacks.get(request["agent"], ())], context)

    def stream_error(request: dict[str, Any]) -> None:
        observe.turn_ended(request["agent"], "failed")
        callbacks_for(request).error(request["error"])

    def commit_turn(session: Session, request: dict[str, Any]) -> int:
        """In the step that ends the turn (an in-step activity): the messages, the turn's history and its
        result commit together. The callbacks hear the response before that commit, so a step that fails
        to commit runs again and they hear it again: at least once, as from any activity."""
        agent = app.agent(request["agent"])
        added = sessions.commit_turn(
            session,
            taskhub=settings.taskhub,
            agent=agent.name,
            session_key=request["session"],
            correlation_id=request["correlation_id"],
            messages=request["messages"],
            orchestration_instance_id=request.get("orchestration_instance_id"),
            ttl=agent.session_ttl,
        )
        callbacks_for(request).response({"text": request["text"], "messages": request["messages"]})
        observe.turn_ended(agent.name, "completed")
        return added

    app.registry.add_activity(model_call, MODEL_CALL, queue_role="agents")
    app.registry.add_activity(tool_call, TOOL_CALL, queue_role="agents")
    app.registry.add_activity(commit_turn, COMMIT_TURN, queue_role="agents", in_step=True)
    app.registry.add_activity(stream_error, STREAM_ERROR, queue_role="agents")
    app.registry.add_activity(mcp_call, MCP_CALL, queue_role="agents")
    app.registry.add_activity(request_approvals, REQUEST_APPROVALS, queue_role="agents", in_step=True)
    app.registry.add_activity(approval_timed_out, APPROVAL_TIMED_OUT, queue_role="agents", in_step=True)


def offered_mcp_tools(agent: Agent) -> dict[str, tuple[str, dict[str, Any]]]:
    """The MCP tools the model is offered, by the name it sees: their server, and their schema. A name
    that one of the agent's own tools (or an earlier server) has already is left out."""
    offered: dict[str, tuple[str, dict[str, Any]]] = {}
    for server in agent.mcp_servers.values():
        for tool in connections.list_tools(server):
            name = server.offered_name(tool["name"])
            if name in agent.tools or name in offered:
                log.warning(
                    "agent %r: MCP tool %r of server %r hides behind another tool", agent.name, name, server.name
                )
                continue
            schema = {"name": name, "description": tool["description"], "parameters": tool["input_schema"]}
            offered[name] = (server.name, {"type": "function", "function": schema})
    return offered


def _for_model(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chat messages as the API takes them: our bookkeeping fields (usage) stay behind."""
    return [{key: value for key, value in m.items() if key != "usage"} for m in messages]


def add_agent_queue(app: DurableApp, queue_role: str) -> None:
    """Register the agent calls that run on a queue once more for `queue_role` (`Agent(queue=...)`), as
    `NAME:QUEUE` on that queue: publishing, drainers, the sweeper, `-Q` and the worker records then route
    them as any activity with a queue of its own."""
    for name in ROUTED_CALLS:
        routed = routed_call(name, queue_role)
        app.registry.activities.setdefault(
            routed, replace(app.registry.activities[name], name=routed, queue_role=queue_role)
        )
