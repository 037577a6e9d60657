"""The live view of an agent's reply: a page, and the Server-Sent Events feed it reads from Redis."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from .. import ids
from ..errors import AgentRunError, StreamNotFoundError, WaitTimeoutError
from ..state import OrchestrationStatus
from .context import Dashboard, page_route

#: How long the feed waits for a queued turn to begin streaming before telling the page.
START_TIMEOUT = 60.0
#: A feed quiet this long ends; the browser reconnects from its last event id.
IDLE_TIMEOUT = 120.0


def sse(event: str, data: dict[str, Any], event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {json.dumps(data)}\n\n"


def routes(dash: Dashboard) -> APIRouter:
    router = APIRouter(include_in_schema=False, route_class=page_route(dash))

    def reply_context(correlation_id: str) -> dict[str, Any]:
        turn = dash.client.get_orchestration_state(ids.agent_turn_instance_id(correlation_id))
        request_data = turn.input if turn is not None and isinstance(turn.input, dict) else {}
        output = turn.output if turn is not None and isinstance(turn.output, dict) else {}
        completed = turn is not None and turn.runtime_status == OrchestrationStatus.COMPLETED
        prompts = [m.get("content") for m in request_data.get("messages") or [] if m.get("role") == "user"]
        return {
            "correlation_id": correlation_id,
            "turn": turn,
            "turn_instance": ids.agent_turn_instance_id(correlation_id),
            "agent": request_data.get("agent"),
            "session_key": request_data.get("session"),
            "prompt": prompts[-1] if prompts else None,
            "finished": turn is not None and turn.runtime_status.is_terminal,
            "final_text": output.get("text") if completed else None,
            "usage": output.get("usage"),
        }

    @router.get("/streams/{correlation_id}")
    def stream_page(request: Request, correlation_id: str) -> Response:
        return dash.renderer.render(request, "stream.html", nav="sessions", **reply_context(correlation_id))

    @router.get("/streams/{correlation_id}/head")
    def stream_head(request: Request, correlation_id: str) -> Response:
        """Who is answering what: fetched again once the turn has started (the page may open before)."""
        return dash.renderer.render(request, "_stream_head.html", **reply_context(correlation_id))

    @router.get("/streams/{correlation_id}/events")
    async def stream_events(request: Request, correlation_id: str) -> Response:
        # EventSource sends the last id it saw when it reconnects: resume there, no gap, no repeat.
        cursor = request.headers.get("last-event-id") or "0"

        async def feed() -> AsyncIterator[str]:
            yield "retry: 1500\n: connected\n\n"
            try:
                chunks = dash.agents.stream(
                    correlation_id, cursor=cursor, start_timeout=START_TIMEOUT, idle_timeout=IDLE_TIMEOUT
                )
                async for chunk in chunks:
                    yield sse(chunk.kind, {"text": chunk.text, "seq": chunk.seq}, chunk.cursor)
            except AgentRunError as error:
                yield sse("failed", {"message": f"{error.details.error_type}: {error.details.message}"})
            except StreamNotFoundError:
                yield sse("missing", {"message": "No reply is streaming under this id (yet)."})
            except WaitTimeoutError:
                yield sse("idle", {"message": "The reply has gone quiet; still listening."})

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(feed(), media_type="text/event-stream", headers=headers)

    return router
