"""The route class of every API endpoint: bodies read as JSON under a size limit, every error as one JSON shape.

Being a route class (not app-level handlers), it keeps doing this when the routes are mounted into
someone else's FastAPI app.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.types import Scope

from .origins import OriginPolicy
from .problems import ApiError, problem_response

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
#: Answers are data, never pages: a browser must not sniff them into HTML, frame them or run anything in them.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class LimitedRequest(Request):
    """A request whose body is refused with 413 past `limit` bytes, before it is all in memory."""

    limit: int = 0

    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            declared = self.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.limit:
                raise self._too_large()
            received = bytearray()
            async for chunk in self.stream():
                received += chunk
                if len(received) > self.limit:
                    raise self._too_large()
            self._body = bytes(received)
        return self._body

    def _too_large(self) -> ApiError:
        return ApiError(
            413,
            "payload_too_large",
            f"the request body is over {self.limit:,} bytes, the most this API reads. Store large data "
            "elsewhere and pass a reference, or raise DURABLE_AGENTS_MAX_PAYLOAD_BYTES.",
        )


def _is_json(content_type: str) -> bool:
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


def _json_body(request: Request) -> Scope:
    """The scope of a request whose body is JSON, or 415 for any other type.

    A page of another site can send a form or `text/plain` without asking the server first (a CORS
    "simple request"), but not `application/json`: requiring it keeps such pages from changing
    anything. A request with no Content-Type at all (`curl -X POST` with no body) is taken as JSON.
    """
    content_type = request.headers.get("content-type")
    if content_type is not None and not _is_json(content_type):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"the body is {content_type.partition(';')[0].strip()!r}, but this API reads JSON only: send it "
            "with 'Content-Type: application/json' (curl: -H 'Content-Type: application/json')",
        )
    headers = [(name, value) for name, value in request.scope["headers"] if name != b"content-type"]
    return {**request.scope, "headers": [*headers, (b"content-type", b"application/json")]}


def durable_route(body_limit: int, origins: OriginPolicy) -> type[APIRoute]:
    """A route class that checks where a request comes from, reads at most `body_limit` bytes of JSON
    body, and answers errors as JSON."""

    class LimitedBody(LimitedRequest):
        limit = body_limit

    class DurableRoute(APIRoute):
        def get_route_handler(self) -> Handler:
            handler = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                has_body = request.method in _BODY_METHODS
                try:
                    refusal = origins.refusal(request, request.method)
                    if refusal is not None:
                        raise ApiError(403, "forbidden_origin", refusal)
                    limited = LimitedBody(_json_body(request) if has_body else request.scope, request.receive)
                    if has_body:
                        await limited.body()  # here, so FastAPI does not turn a 413 into its 400
                    response = await handler(limited)
                except Exception as error:
                    response = problem_response(error)
                for name, value in SECURITY_HEADERS.items():
                    response.headers.setdefault(name, value)
                return response

            return guarded

    return DurableRoute
