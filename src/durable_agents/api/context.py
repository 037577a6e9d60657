"""What every route shares: the settings, the user's app (if loaded), and clients built on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from fastapi import Request
from fastapi.routing import APIRoute

from ..config import Settings
from ..errors import AgentNotRegisteredError
from ..lazy_clients import LazyClients
from .auth import Authenticator
from .origins import OriginPolicy
from .route import durable_route

if TYPE_CHECKING:
    from ..app import DurableApp

#: Orchestrations the engine registers for itself (agent sessions and turns); not started by name.
INTERNAL_PREFIX = "durable_agents."

#: Routes the API links to from its answers (status, run and stream URLs).
STATUS_ROUTE = "durable_agents.get_instance"
RUN_ROUTE = "durable_agents.get_agent_run"
STREAM_ROUTE = "durable_agents.follow_stream"


class ApiContext(LazyClients):
    """One per router: clients are built lazily, so the API starts (and /readyz answers) while Postgres is down."""

    def __init__(self, durable_app: DurableApp | None, settings: Settings) -> None:
        super().__init__(durable_app, settings)
        self.authenticate = Authenticator(settings)
        # JSON may be laid out more loosely than the engine measures it; the engine applies the exact limit.
        self.origins = OriginPolicy(settings)
        self.route_class: type[APIRoute] = durable_route(2 * settings.max_payload_bytes + 64 * 1024, self.origins)

    def orchestration_names(self) -> list[str] | None:
        if self.durable_app is None:
            return None
        names = self.durable_app.registry.orchestrations
        return sorted(name for name in names if not name.startswith(INTERNAL_PREFIX))

    def agent_names(self) -> list[str] | None:
        return sorted(self.durable_app.agents) if self.durable_app is not None else None

    def route_name(self, route: str) -> str:
        """`route` of this router: one app may mount routers of several task hubs, each linking to its own."""
        return f"{route}[{self.settings.taskhub}]"

    def url(self, request: Request, route: str, **params: str) -> str:
        """The absolute URL of a named route, with each parameter escaped (ids may hold '?', '#', spaces)."""
        escaped = {key: quote(value, safe="") for key, value in params.items()}
        return str(request.url_for(self.route_name(route), **escaped))

    def require_agent(self, name: str) -> None:
        """404 for an agent the loaded app does not host; without an app every name is taken on trust."""
        known = self.agent_names()
        if known is not None and name not in known:
            raise AgentNotRegisteredError(name, known)
