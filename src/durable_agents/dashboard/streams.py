"""The live view of an agent's reply: a page, and the Server-Sent Events feed it reads from Redis."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from .. import ids
from ..errors import AgentRunError, StreamNotFoundError, WaitTimeoutError
from ..failures import service_failure
from ..state import OrchestrationStatus
from .context import Dashboard, page_route

log = logging.getLogger(__name__)

#: A Redis Stream entry id, as the feed hands them out (and "0", the start).
CURSOR = re.compile(r"^(0|[0-9]{1,20}-[0-9]{1,20})$")
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
        context = reply_context(correlation_id)
        if context["turn"] is None and not dash.agents.reply_exists(correlation_id):
            return dash.not_found(
                request, f"No agent reply {correlation_id!r} was asked for in task hub {dash.settings.taskhub!r}."
            )
        return dash.renderer.render(request, "stream.html", nav="sessions", **context)

    @router.get("/streams/{correlation_id}/head")
    def stream_head(request: Request, correlation_id: str) -> Response:
        """Who is answering what: fetched again once the turn has started (the page may open before)."""
        return dash.renderer.render(request, "_stream_head.html", **reply_context(correlation_id))

    @router.get("/streams/{correlation_id}/events")
    async def stream_events(request: Request, correlation_id: str) -> Response:
        # EventSource sends the last id it saw when it reconnects: resume there, no gap, no repeat.
        cursor = request.headers.get("last-event-id") or "0"
        if not CURSOR.match(cursor):
            return Response(
                f"Last-Event-ID {cursor[:40]!r} is not a position in a reply.", 400, media_type="text/plain"
            )
        agents = dash.agents  # built here: a database that is down answers 503 before the stream opens
        if cursor == "0" and not await run_in_threadpool(agents.reply_exists, correlation_id):
            return Response("No such reply.", 404, media_type="text/plain")

        async def feed() -> AsyncIterator[str]:
            yield "retry: 1500\n: connected\n\n"
            try:
                chunks = agents.stream(
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
            except Exception as error:
                if (failure := service_failure(error)) is None:
                    raise
                log.warning("the stream of reply %s failed: %s", correlation_id, error)
                what = "the database" if failure.service == "database" else failure.service
                yield sse("unavailable", {"message": f"The dashboard cannot reach {what} right now."})

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(feed(), media_type="text/event-stream", headers=headers)

    return router
