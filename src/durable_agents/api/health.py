"""Liveness (`/healthz`) and readiness (`/readyz`: database and Redis reachable, schema current)."""

from __future__ import annotations

import redis
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..config import Settings
from ..connections import redis_client
from ..errors import ConfigurationError, SchemaMismatchError
from ..store.schema import check_schema
from .context import ApiContext
from .schemas import Health, Readiness

#: A probe must answer quickly even when a service hangs.
PROBE_TIMEOUT = 3.0


def _redis_check(settings: Settings, url: str) -> str:
    try:
        client = redis_client(settings, url, socket_connect_timeout=PROBE_TIMEOUT, socket_timeout=PROBE_TIMEOUT)
        try:
            client.ping()
        finally:
            client.close()
    except redis.RedisError as error:
        return f"unreachable: {error}"
    return "ok"


def _database_checks(url: str) -> dict[str, str]:
    try:
        check_schema(url)
    except SchemaMismatchError as error:
        return {"database": "ok", "schema": str(error)}
    except ConfigurationError as error:
        return {"database": str(error), "schema": "unknown: the database is unreachable"}
    return {"database": "ok", "schema": "ok"}


def health_routes(context: ApiContext) -> APIRouter:
    api = APIRouter(route_class=context.route_class, tags=["health"])

    @api.get("/healthz", response_model=Health, summary="Liveness: the process serves requests")
    def healthz() -> Health:
        return Health()

    @api.get(
        "/readyz",
        response_model=Readiness,
        summary="Readiness: database and Redis reachable, schema current",
        responses={503: {"model": Readiness, "description": "Something the API needs is not available"}},
    )
    def readyz(request: Request) -> JSONResponse:
        settings = context.settings
        checks = _database_checks(settings.database_url)
        if not settings.embedded:  # embedded mode keeps broker and streams in this process
            checks["redis"] = _redis_check(settings, settings.redis_url)
        broker = settings.effective_broker_url
        if broker != settings.redis_url and broker.startswith(("redis://", "rediss://", "unix://")):
            checks["broker"] = _redis_check(settings, broker)
        ready = all(value == "ok" for value in checks.values())
        body = Readiness(status="ready" if ready else "not ready", checks=checks)
        if not ready and not context.authenticate.identifies(request):
            # What is wrong names the database's user, host and name: for callers with a key only.
            body.checks = {name: "ok" if value == "ok" else "failing" for name, value in checks.items()}
            body.detail = "send an API key of this task hub (Authorization: Bearer KEY) to see what is wrong"
        return JSONResponse(body.model_dump(exclude_none=True), status_code=200 if ready else 503)

    return api
