"""Agent session pages: the list of conversations, and one conversation with its turns."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..agents.proxy import AGENT_TURN
from ..errors import SessionNotFoundError
from ..state import OrchestrationState, OrchestrationStatus
from .context import Dashboard, page_route

PAGE_SIZE = 50
#: Recent turn instances looked through for the ones of a session.
TURN_SCAN = 200


def routes(dash: Dashboard) -> APIRouter:
    router = APIRouter(include_in_schema=False, route_class=page_route(dash))
    render = dash.renderer.render

    def turns_of(agent: str, session_key: str) -> list[OrchestrationState]:
        recent = dash.client.query_instances(name=AGENT_TURN, limit=TURN_SCAN)
        return [
            turn
            for turn in recent
            if isinstance(turn.input, dict)
            and turn.input.get("agent") == agent
            and turn.input.get("session") == session_key
        ]

    @router.get("/sessions")
    def sessions_page(request: Request) -> Response:
        agent = request.query_params.get("agent", "").strip() or None
        try:
            offset = max(0, int(request.query_params.get("offset", "0")))
        except ValueError:
            offset = 0
        rows = dash.agents.list_sessions(agent, limit=PAGE_SIZE + 1, offset=offset)
        return render(
            request,
            "sessions.html",
            nav="sessions",
            sessions=rows[:PAGE_SIZE],
            more=len(rows) > PAGE_SIZE,
            offset=offset,
            page_size=PAGE_SIZE,
            agent=agent or "",
            agent_names=sorted({*dash.client.app.agents, *(s.agent for s in rows)}),
        )

    def conversation(agent: str, session_key: str) -> dict[str, Any] | None:
        try:
            info = dash.agents.get_session(agent, session_key)
        except SessionNotFoundError:
            info = None
        turns = turns_of(agent, session_key)
        if info is None and not turns:
            return None
        live = [t for t in turns if t.runtime_status in (OrchestrationStatus.PENDING, OrchestrationStatus.RUNNING)]
        return {"info": info, "agent": agent, "session_key": session_key, "turns": turns, "live": live}

    @router.get("/sessions/{agent}/{session_key:path}/live")
    def session_live(request: Request, agent: str, session_key: str) -> Response:
        context = conversation(agent, session_key)
        if context is None:
            return Response("This session no longer exists.", status_code=404)
        return render(request, "_session_live.html", **context)

    @router.get("/sessions/{agent}/{session_key:path}")
    def session_page(request: Request, agent: str, session_key: str) -> Response:
        context = conversation(agent, session_key)
        if context is None:
            return dash.not_found(request, f"Agent {agent!r} has no session {session_key!r} in this task hub.")
        return render(request, "session.html", nav="sessions", **context)

    return router
