"""The live dashboard: server-rendered pages (Jinja2 + htmx) over the client, mounted at `/` of the API app.

    from fastapi import FastAPI
    from durable_agents.dashboard import router

    web = FastAPI()
    web.include_router(router(app, app.settings))

Sign-in takes an API key of the task hub (the HTTP API's `DURABLE_AGENTS_API_KEYS`); with
`DURABLE_AGENTS_API_AUTH=disabled` the pages are open to loopback clients only.
"""

from __future__ import annotations

from fastapi import APIRouter

from ..app import DurableApp
from ..config import Settings
from . import actions, approvals, entities, instances, login, schedules, sessions, streams, workers
from .auth import Auth
from .context import Dashboard
from .views import Renderer

__all__ = ["router"]


def router(durable_app: DurableApp | None = None, settings: Settings | None = None) -> APIRouter:
    """The dashboard's routes for one task hub: HTML pages at `/`, static files under `/static`.

    `settings` defaults to the app's (or the environment's without an app). Raises ConfigurationError,
    as the API does, when sign-in is required but no API key of the task hub is configured.
    """
    if settings is None:
        settings = durable_app.settings if durable_app is not None else Settings()
    auth = Auth(settings)
    dash = Dashboard(durable_app, settings, Renderer(settings.taskhub, auth.enabled), auth)
    combined = APIRouter(include_in_schema=False)
    for module in (login, instances, sessions, approvals, entities, schedules, streams, workers, actions):
        combined.include_router(module.routes(dash))
    return combined
