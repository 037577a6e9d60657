"""Agent routes: run an agent (waiting for its reply, or 202 with the correlation id), and its sessions."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from .. import ids
from ..agents.proxy import DEFAULT_SESSION
from ..agents.response import AgentResponse
from ..errors import AgentRunError, FailureDetails, WaitTimeoutError
from ..serialization import encode
from ..state import OrchestrationStatus
from .context import RUN_ROUTE, STREAM_ROUTE, ApiContext
from .problems import ApiError
from .schemas import (
    AgentName,
    CorrelationId,
    Limit,
    Names,
    Offset,
    RunAccepted,
    RunRequest,
    RunResponse,
    Session,
    SessionKey,
    SessionPage,
    Usage,
    errors,
)


def _accepted(
    context: ApiContext, request: Request, agent: str, session: str, correlation_id: str, status: str
) -> JSONResponse:
    body = RunAccepted(
        agent=agent,
        session=session,
        correlation_id=correlation_id,
        status="RUNNING" if status == "RUNNING" else "PENDING",
        response_url=context.url(request, RUN_ROUTE, name=agent, correlation_id=correlation_id),
        stream_url=context.url(request, STREAM_ROUTE, correlation_id=correlation_id),
    )
    return JSONResponse(body.model_dump(), status_code=202)


def _response(response: AgentResponse, agent: str) -> RunResponse:
    return RunResponse(
        agent=agent,
        session=response.session.key if response.session else DEFAULT_SESSION,
        correlation_id=response.correlation_id,
        text=response.text,
        messages=response.messages,
        usage=Usage.model_validate(response.usage, from_attributes=True),
    )


def agent_routes(context: ApiContext) -> APIRouter:
    api = APIRouter(route_class=context.route_class, tags=["agents"])

    @api.get("/agents", response_model=Names, summary="Agent names the API knows")
    def list_agents() -> Names:
        return Names(names=context.agent_names())

    @api.post(
        "/agents/{name}/run",
        response_model=RunResponse,
        summary="Run an agent: one turn of a session",
        responses={
            202: {"model": RunAccepted, "description": "Started; not finished yet"},
            **errors(404, 413, 422, 502),
        },
    )
    def run_agent(name: AgentName, body: RunRequest, request: Request) -> Any:
        """Waits up to `timeout` seconds for the reply (200). With `wait: false`, or when the timeout runs
        out first, answers 202 with the correlation id and the URLs of the response and of its stream."""
        context.require_agent(name)
        message: Any = body.message if isinstance(body.message, str) else [m.model_dump() for m in body.message]
        encode(message, what=f"message to agent {name!r}", limit=context.settings.max_payload_bytes)
        session = body.session or DEFAULT_SESSION
        agent = context.agents.get_agent(name)
        correlation_id: str = agent.run_sync(message, session=session, wait_for_response=False)
        if not body.wait:
            return _accepted(context, request, name, session, correlation_id, "PENDING")
        try:
            return _response(agent.wait(correlation_id, timeout=body.timeout), name)
        except WaitTimeoutError:
            return _accepted(context, request, name, session, correlation_id, "RUNNING")

    @api.get(
        "/agents/{name}/runs/{correlation_id}",
        name=context.route_name(RUN_ROUTE),
        operation_id="get_agent_run",
        response_model=RunResponse,
        summary="The response of a run started earlier",
        responses={202: {"model": RunAccepted, "description": "Not finished yet"}, **errors(404, 422, 502)},
    )
    def get_agent_run(
        name: AgentName,
        correlation_id: CorrelationId,
        request: Request,
        wait: Annotated[float, Query(ge=0, le=300, description="Seconds to wait for it to finish.")] = 0,
    ) -> Any:
        context.require_agent(name)
        client = context.client
        instance_id = ids.agent_turn_instance_id(correlation_id)
        if wait > 0:
            with contextlib.suppress(WaitTimeoutError):  # answered below from its current state
                client.wait_for_orchestration_completion(instance_id, timeout=wait, missing_ok=True)
        state = client.get_orchestration_state(instance_id)
        if state is None or not isinstance(state.input, dict) or state.input.get("agent") != name:
            raise ApiError(
                404,
                "run_not_found",
                f"no run {correlation_id!r} of agent {name!r} in task hub {context.settings.taskhub!r} "
                "(a run just started may take a moment to appear; pass ?wait=SECONDS)",
            )
        if not state.runtime_status.is_terminal:
            return _accepted(
                context, request, name, str(state.input.get("session")), correlation_id, state.runtime_status
            )
        if state.runtime_status != OrchestrationStatus.COMPLETED:
            details = state.failure_details or FailureDetails("TerminatedError", "the run was terminated")
            raise AgentRunError(f"agent {name!r} could not answer (run {correlation_id}): {details}", details)
        return _response(AgentResponse.from_turn(state.output), name)

    @api.get(
        "/agents/{name}/sessions",
        response_model=SessionPage,
        summary="An agent's sessions, most recently used first (without messages)",
        responses=errors(404, 422),
    )
    def list_sessions(name: AgentName, limit: Limit = 50, offset: Offset = 0) -> SessionPage:
        context.require_agent(name)
        found = context.agents.list_sessions(name, limit=limit, offset=offset)
        return SessionPage(
            items=[Session.model_validate(s, from_attributes=True) for s in found],
            limit=limit,
            offset=offset,
            next_offset=offset + len(found) if len(found) == limit else None,
        )

    @api.get(
        "/agents/{name}/sessions/{session:path}",
        response_model=Session,
        summary="A session's counters and whole conversation",
        responses=errors(404, 422),
    )
    def get_session(name: AgentName, session: SessionKey) -> Session:
        context.require_agent(name)
        return Session.model_validate(context.agents.get_session(name, session), from_attributes=True)

    @api.post(
        "/agents/{name}/sessions/{session:path}/reset",
        response_model=Session,
        summary="Forget a session's conversation (its next run starts afresh)",
        responses=errors(404, 422),
    )
    def reset_session(name: AgentName, session: SessionKey) -> Session:
        context.require_agent(name)
        context.agents.reset_session(name, session)
        return Session.model_validate(context.agents.get_session(name, session), from_attributes=True)

    @api.delete(
        "/agents/{name}/sessions/{session:path}",
        status_code=204,
        summary="Delete a session and its conversation",
        responses=errors(404, 422),
    )
    def delete_session(name: AgentName, session: SessionKey) -> None:
        context.require_agent(name)
        context.agents.delete_session(name, session)

    return api
