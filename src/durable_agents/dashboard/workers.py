"""The workers page: the task hub's live workers, the queues they consume and the names they serve."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .context import Dashboard, page_route


def routes(dash: Dashboard) -> APIRouter:
    router = APIRouter(include_in_schema=False, route_class=page_route(dash))

    @router.get("/workers")
    def workers_page(request: Request) -> Response:
        include_dead = request.query_params.get("all") == "1"
        workers = dash.client.list_workers(include_dead=include_dead)
        return dash.renderer.render(
            request, "workers.html", nav="workers", workers=workers, include_dead=include_dead, now=datetime.now(UTC)
        )

    return router
