"""`create_app()`: the FastAPI app serving the API (and the dashboard, when installed); `router()` to mount it."""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException

from ..config import Settings
from .agents import agent_routes
from .approvals import approval_routes
from .context import ApiContext
from .diagnosis import diagnosis_routes
from .entities import entity_routes
from .health import health_routes
from .instances import instance_routes
from .problems import error_response, validation_response
from .schedules import schedule_routes
from .streams import stream_routes

if TYPE_CHECKING:
    from ..app import DurableApp

DASHBOARD_MODULE = "durable_agents.dashboard"

DESCRIPTION = """Start, query and steer durable orchestrations and agents of one task hub.

Every `/api` route needs `Authorization: Bearer <key>` with a key of this API's task hub
(`DURABLE_AGENTS_API_KEYS`). Errors are `{"error": {"code": ..., "message": ...}}`."""


def _settings(durable_app: DurableApp | None, settings: Settings | None) -> Settings:
    if settings is not None:
        return settings
    return durable_app.settings if durable_app is not None else Settings()


def router(durable_app: DurableApp | None = None, settings: Settings | None = None) -> APIRouter:
    """The API's routes (`/api/...`, `/healthz`, `/readyz`) for `app.include_router(...)` in your own FastAPI app.

    Scoped to the task hub of `settings` (default: the app's settings, else the environment). Raises
    ConfigurationError when no API key is configured for that task hub and authentication is not disabled.
    """
    context = ApiContext(durable_app, _settings(durable_app, settings))
    routes = APIRouter()
    routes.include_router(health_routes(context))
    secured = APIRouter(prefix="/api", dependencies=[Depends(context.authenticate)])
    secured.include_router(instance_routes(context))
    secured.include_router(diagnosis_routes(context))
    secured.include_router(agent_routes(context))
    secured.include_router(approval_routes(context))
    secured.include_router(entity_routes(context))
    secured.include_router(stream_routes(context))
    secured.include_router(schedule_routes(context))
    routes.include_router(secured)
    return routes


def create_app(durable_app: DurableApp | None = None, settings: Settings | None = None) -> FastAPI:
    """The HTTP API as an ASGI app; serve it with `durable-agents api` or any ASGI server.

    With `durable_app`, the API knows its orchestration and agent names (and refuses unknown ones with
    404); without it, orchestrations are started by name on trust.
    """
    from .. import __version__

    resolved = _settings(durable_app, settings)
    # FastAPIOffline serves the /docs page's scripts itself: nothing is fetched from a CDN.
    web = FastAPIOffline(title="durable-agents", version=__version__, description=DESCRIPTION)
    web.include_router(router(durable_app, resolved))
    _install_error_handlers(web)
    if importlib.util.find_spec(DASHBOARD_MODULE) is not None:
        dashboard = getattr(importlib.import_module(DASHBOARD_MODULE), "router", None)
        if dashboard is not None:
            from ..app import DurableApp

            # The dashboard takes an app; without the user's, one knowing no names stands in.
            web.include_router(dashboard(durable_app or DurableApp(settings=resolved), resolved))
    return web


def _install_error_handlers(web: FastAPI) -> None:
    """Unknown paths and methods answer in the API's error shape too (routes handle their own errors)."""

    async def http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        message = str(error.detail)
        if error.status_code == 404:
            message = f"no route {request.method} {request.url.path}; see /docs for the API's routes"
        elif error.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}; see /docs for the API's routes"
        return error_response(error.status_code, code, message, headers=error.headers)

    async def invalid(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        return validation_response(error)

    web.add_exception_handler(HTTPException, http_error)
    web.add_exception_handler(RequestValidationError, invalid)
