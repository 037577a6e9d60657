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

from .problems import ApiError, problem_response

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
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


def _as_json(scope: Scope) -> Scope:
    # Every body is JSON here, whatever it is labelled: `curl -d` sends a form type by default, and a
    # human approval should be one plain curl.
    headers = [(name, value) for name, value in scope["headers"] if name != b"content-type"]
    return {**scope, "headers": [*headers, (b"content-type", b"application/json")]}


def durable_route(body_limit: int) -> type[APIRoute]:
    """A route class reading at most `body_limit` bytes of body and answering errors as JSON."""

    class LimitedBody(LimitedRequest):
        limit = body_limit

    class DurableRoute(APIRoute):
        def get_route_handler(self) -> Handler:
            handler = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                has_body = request.method in _BODY_METHODS
                limited = LimitedBody(_as_json(request.scope) if has_body else request.scope, request.receive)
                try:
                    if has_body:
                        await limited.body()  # here, so FastAPI does not turn a 413 into its 400
                    return await handler(limited)
                except Exception as error:
                    return problem_response(error)

            return guarded

    return DurableRoute
