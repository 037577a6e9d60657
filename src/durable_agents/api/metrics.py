"""`/metrics`: Prometheus text of this process (or of every process sharing its PROMETHEUS_MULTIPROC_DIR)
and the task hub's levels (instances by status, queue depth), read at each scrape."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from ..celery_config import hub_queue_names
from ..tasks.gauges import Levels
from ..telemetry.exposition import CONTENT_TYPE, render
from .context import ApiContext


def metrics_routes(context: ApiContext) -> APIRouter:
    routes = APIRouter()
    app = context.durable_app
    levels = Levels(context.settings, (lambda: hub_queue_names(app)) if app is not None else None)

    @routes.get("/metrics", include_in_schema=False)
    def metrics() -> Response:  # a plain def: the scrape's queries run on the threadpool
        return Response(render([levels]), media_type=CONTENT_TYPE)

    return routes
