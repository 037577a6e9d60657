"""What every dashboard route shares: the clients, the renderer, sign-in, and small request helpers."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute

from ..api.origins import OriginPolicy
from ..app import DurableApp
from ..config import Settings
from ..errors import ConfigurationError
from ..failures import service_failure
from ..lazy_clients import LazyClients
from .auth import Auth
from .views import Renderer

log = logging.getLogger(__name__)


class Dashboard(LazyClients):
    """One per router. The clients are built on first use, so the app starts while Postgres is down
    (as the API does, whose /readyz then says why)."""

    def __init__(self, durable_app: DurableApp | None, settings: Settings, renderer: Renderer, auth: Auth) -> None:
        super().__init__(durable_app, settings)
        self.renderer = renderer
        self.auth = auth
        self.origins = OriginPolicy(settings)

    def deny(self, request: Request) -> Response | None:
        """A response turning the request away (sign in first, or a cross-site post), else None."""
        if not self.auth.allows_client(request):
            return self.message(
                request, "Authentication is disabled, so the dashboard serves this machine only (loopback).", 403
            )
        if (refused := self.refusal(request)) is not None:
            return refused
        if self.auth.signed_in(request):
            return None
        login = self.renderer.url(request, "/login")
        if request.headers.get("hx-request"):  # htmx follows this header with a full page load
            return Response(status_code=401, headers={"HX-Redirect": login})
        if request.method in ("GET", "HEAD"):
            wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"{login}?next={quote(wanted, safe='')}", status_code=303)
        return self.message(request, "Sign in to use the dashboard.", 401)

    def refusal(self, request: Request) -> Response | None:
        """A 403 for a request to a host name this server does not answer to, or a change another
        site's page sent (see `OriginPolicy`); else None."""
        reason = self.origins.refusal(request, request.method)
        if reason is None:
            return None
        return self.message(request, reason[0].upper() + reason[1:] + ".", 403)

    def message(self, request: Request, text: str, status_code: int) -> Response:
        """An error for an action: a toast for htmx, a small page otherwise."""
        if request.headers.get("hx-request"):
            return Response(text, status_code=status_code, media_type="text/plain; charset=utf-8")
        title = {401: "Sign in first", 403: "Refused", 404: "Not found", 503: "Unavailable"}.get(
            status_code, "Not possible"
        )
        return self.renderer.render(request, "error.html", status_code=status_code, title=title, text=text)

    def not_found(self, request: Request, text: str) -> Response:
        return self.renderer.render(request, "error.html", status_code=404, title="Not found", text=text)

    def done(self, request: Request, target: str, toast: str) -> Response:
        """After an action: htmx refreshes the part it asked for and shows a toast; a plain form redirects."""
        if request.headers.get("hx-request"):
            return Response(status_code=200, headers={"HX-Trigger": json.dumps({"toast": {"message": toast}})})
        return RedirectResponse(self.renderer.url(request, target), status_code=303)


def page_route(dash: Dashboard) -> type[APIRoute]:
    """Routes behind sign-in (and the other checks of `deny`) that, when a backing service is down,
    answer with a page saying so instead of a bare 500."""

    class PageRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                if (denied := dash.deny(request)) is not None:
                    return denied
                try:
                    return await handler(request)
                except Exception as error:
                    failure = service_failure(error)
                    if failure is None and not isinstance(error, ConfigurationError):
                        raise
                    log.warning("dashboard page %s failed: %s", request.url.path, error)
                    if failure is None:
                        text = str(error)
                    else:
                        what = "the database" if failure.service == "database" else failure.service
                        text = f"The dashboard cannot reach {what} right now; /readyz says what is wrong."
                    return dash.message(request, text, 503)

            return guarded

    return PageRoute


async def form_fields(request: Request) -> dict[str, str]:
    """A url-encoded form body as a dict (the last value of a repeated field wins)."""
    body = await request.body()
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[-1] for name, values in fields.items()}


Form = Annotated[dict[str, Any], Depends(form_fields)]
