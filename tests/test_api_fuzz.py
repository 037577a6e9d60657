"""A schema-driven fuzz run of the HTTP API: schemathesis sends what the OpenAPI schema allows (and what it
does not) to every route, against real Postgres and Redis; no request may make the API answer 5xx.

The API runs without an app, so names are taken on trust and generated requests reach the database
(instances are created, events raised, sessions read) instead of stopping at an unknown name.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from durable_agents import Settings
from durable_agents.api import create_app, router

from conftest import DATABASE_URL, REDIS_URL, new_taskhub

KEY = "fuzz-key-0123456789abcdef"
HUB = new_taskhub("fuzz")
SETTINGS = Settings(
    database_url=DATABASE_URL,
    redis_url=REDIS_URL,
    taskhub=HUB,
    api_keys=f"{HUB}:{KEY}",
    max_payload_bytes=2048,  # so generated payloads cross the limit too
)
pytestmark = pytest.mark.usefixtures("services")  # creates and migrates the database first


class BuiltOnFirstRequest:
    """The real app (`create_app`), built when the first request comes, after the services fixture ran:
    schemathesis reads the schema at import, when the database may not exist yet."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.app is None:
            self.app = create_app(None, SETTINGS)
        await self.app(scope, receive, send)


# The routes alone make the same OpenAPI document, and need no database to do so.
_routes = FastAPI(title="durable-agents")
_routes.include_router(router(None, SETTINGS))
schema = schemathesis.openapi.from_dict(_routes.openapi())
schema.app = BuiltOnFirstRequest()


def _bounded(case: Any) -> None:
    """Generated waits are capped: nothing serves this task hub, so every wait would run its course."""
    path = case.operation.path
    if path == "/api/streams/{correlation_id}":
        case.query = {**(case.query or {}), "start_timeout": 0}
    elif path == "/api/agents/{name}/runs/{correlation_id}":
        case.query = {**(case.query or {}), "wait": 0}
    elif path == "/api/agents/{name}/run" and isinstance(case.body, dict):
        case.body = {**case.body, "wait": False}


#: Every operation of the schema, parametrized here rather than by `schema.parametrize()`, whose
#: collection under pytest-xdist became one test of one operation: each operation is its own test.
OPERATIONS = [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("operation", OPERATIONS, ids=[operation.label for operation in OPERATIONS])
def test_no_request_makes_the_api_fail(operation: Any) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=20,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def no_server_error(case: Any) -> None:
        _bounded(case)
        response = case.call(headers={"Authorization": f"Bearer {KEY}"})
        case.validate_response(
            response, checks=[not_a_server_error, response_schema_conformance, content_type_conformance]
        )
        assert response.status_code < 500, response.text

    no_server_error()
