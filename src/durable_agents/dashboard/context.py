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
from starlette.concurrency import run_in_threadpool

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
        # As the API reads bodies: an event's data may be as large as the engine accepts, laid out loosely.
        self.form_limit = 2 * settings.max_payload_bytes + 64 * 1024

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
        title = {401: "Sign in first", 403: "Refused", 404: "Not found", 413: "Too large", 503: "Unavailable"}.get(
            status_code, "Not possible"
        )
        return self.renderer.render(request, "error.html", status_code=status_code, title=title, text=text)

    def unavailable(self, request: Request, error: Exception) -> Response:
        """The page for a backing service that failed (re-raises any other error)."""
        failure = service_failure(error)
        if failure is None and not isinstance(error, ConfigurationError):
            raise error
        log.warning("dashboard page %s failed: %s", request.url.path, error)
        if failure is None:
            text = str(error)
        else:
            what = "the database" if failure.service == "database" else failure.service
            text = f"The dashboard cannot reach {what} right now; /readyz says what is wrong."
        return self.message(request, text, 503)

    def not_found(self, request: Request, text: str) -> Response:
        return self.renderer.render(request, "error.html", status_code=404, title="Not found", text=text)

    def done(self, request: Request, target: str, toast: str) -> Response:
        """After an action: htmx refreshes the part it asked for and shows a toast; a plain form redirects."""
        if request.headers.get("hx-request"):
            return Response(status_code=200, headers={"HX-Trigger": json.dumps({"toast": {"message": toast}})})
        return RedirectResponse(self.renderer.url(request, target), status_code=303)


def page_route(dash: Dashboard, *, signed_in: bool = True) -> type[APIRoute]:
    """Routes behind sign-in (and the other checks of `deny`, unless `signed_in` is False: the sign-in
    pages) that, when a backing service is down, answer with a page saying so instead of a bare 500,
    and read forms of at most the size an event's data may have."""

    class PageRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                request.state.form_limit = dash.form_limit if signed_in else SIGN_IN_FORM_LIMIT
                try:
                    denied = await run_in_threadpool(dash.deny, request) if signed_in else None
                    response = denied if denied is not None else await handler(request)
                except FormTooLargeError as error:
                    response = dash.message(request, str(error), 413)
                except Exception as error:
                    response = dash.unavailable(request, error)
                for name, value in SECURITY_HEADERS.items():
                    response.headers.setdefault(name, value)
                return response

            return guarded

    return PageRoute


#: What a browser may do with the dashboard's pages: load the dashboard's own files only (inline style
#: attributes place the timeline's bars), be framed by no page, send no address to other sites.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class FormTooLargeError(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"The form is over {limit:,} bytes, more than this page accepts.")


#: A sign-in form holds a key and a path: anything larger is not one.
SIGN_IN_FORM_LIMIT = 16 * 1024


async def form_fields(request: Request) -> dict[str, str]:
    """A url-encoded form body as a dict (the last value of a repeated field wins), read only up to
    the route's limit: a huge body is refused before it is in memory."""
    limit: int = getattr(request.state, "form_limit", SIGN_IN_FORM_LIMIT)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise FormTooLargeError(limit)
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > limit:
            raise FormTooLargeError(limit)
    body = bytes(received)
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[-1] for name, values in fields.items()}


Form = Annotated[dict[str, Any], Depends(form_fields)]
