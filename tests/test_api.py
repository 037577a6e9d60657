"""The HTTP API over real HTTP (uvicorn on a free port), against real Postgres, Redis and worker processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from durable_agents import ConfigurationError, Settings
from durable_agents.api import create_app, router
from durable_agents.api.auth import check_bind
from durable_agents.testing import TestModelServer
from durable_agents.testing.server import bind_socket

from conftest import (
    TESTS_DIR,
    Services,
    WorkerProcess,
    create_database_if_missing,
    new_taskhub,
    python_path,
    run_cli,
    wait_until,
)

KEY = "test-api-key-0123456789abcdef"
OTHER_HUB, OTHER_KEY = "someotherhub", "other-hub-key-0123456789abcdef"
#: Small, so that a payload over it is cheap to send.
MAX_PAYLOAD = 64 * 1024
WORDS = " ".join(f"word{i}" for i in range(12))


def api_settings(services: Services, taskhub: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": services.database_url,
        "redis_url": services.redis_url,
        "taskhub": taskhub,
        "api_keys": f"{taskhub}:{KEY},{OTHER_HUB}:{OTHER_KEY}",
        "max_payload_bytes": MAX_PAYLOAD,
        **overrides,
    }
    return Settings(**values)


class ApiServer:
    """An ASGI app served by uvicorn from a background thread on a free loopback port."""

    def __init__(self, app: Any) -> None:
        self._socket = bind_socket("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        config = uvicorn.Config(app, log_config=None, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    def __enter__(self) -> ApiServer:
        self._thread.start()
        wait_until(lambda: self._server.started, message="the API server to start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._socket.close()

    def client(self, key: str | None = KEY) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=90)


@pytest.fixture(scope="module")
def api_server(services: Services, worker: WorkerProcess) -> Iterator[ApiServer]:
    import workflows

    with ApiServer(create_app(workflows.app, api_settings(services, worker.taskhub))) as server:
        yield server


@pytest.fixture
def api(api_server: ApiServer) -> Iterator[httpx.Client]:
    with api_server.client() as http:
        yield http


@pytest.fixture(scope="module")
def agents_server(services: Services, agents_worker: WorkerProcess) -> Iterator[ApiServer]:
    import agents_app

    with ApiServer(create_app(agents_app.app, api_settings(services, agents_worker.taskhub))) as server:
        yield server


@pytest.fixture
def agents_api(agents_server: ApiServer, fresh_model: TestModelServer) -> Iterator[httpx.Client]:
    with agents_server.client() as http:
        yield http


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def start(api: httpx.Client, name: str, **body: Any) -> str:
    response = api.post(f"/api/orchestrations/{name}", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["instance_id"])


def status_of(api: httpx.Client, instance_id: str) -> dict[str, Any]:
    response = api.get(f"/api/instances/{instance_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_for_status(api: httpx.Client, instance_id: str, *statuses: str, timeout: float = 60) -> dict[str, Any]:
    return wait_until(
        lambda: (state := status_of(api, instance_id))["runtime_status"] in statuses and state,
        timeout=timeout,
        message=f"instance {instance_id} to be {'/'.join(statuses)}",
    )


def error_of(response: httpx.Response, status: int, code: str) -> str:
    """The message of an error response, after checking its status, shape and code."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    return str(error["message"])


# -- orchestrations ---------------------------------------------------------------------------


def test_lifecycle_start_status_history_and_output(api: httpx.Client) -> None:
    started = api.post("/api/orchestrations/sequence", json={"input": None})
    assert started.status_code == 202, started.text
    body = started.json()
    assert body["name"] == "sequence"
    assert (
        started.headers["location"]
        == body["status_url"]
        == f"{str(api.base_url).rstrip('/')}/api/instances/{body['instance_id']}"
    )

    state = wait_until(
        lambda: (s := api.get(body["status_url"]).json())["runtime_status"] == "COMPLETED" and s,
        timeout=60,
        message="the instance to complete",
    )
    assert state["output"] == {"greetings": ["Hello, Tokyo!", "Hello, Seattle!", "Hello, London!"], "doubled": 42}
    assert state["failure_details"] is None and state["completed_at"] is not None

    history = api.get(f"/api/instances/{body['instance_id']}/history").json()
    types = [event["type"] for event in history["events"]]
    assert "ExecutionStarted" in types and types[-1] == "ExecutionCompleted"
    assert types.count("TaskScheduled") == 4 and types.count("TaskCompleted") == 4
    assert [event["seq"] for event in history["events"]] == sorted(event["seq"] for event in history["events"])


def test_start_with_own_id_input_and_list_filters(api: httpx.Client) -> None:
    prefix = unique("list")
    ids = [start(api, "plain_function", input={"n": n}, instance_id=f"{prefix}-{n}") for n in range(3)]
    assert ids == [f"{prefix}-{n}" for n in range(3)]
    for n, instance_id in enumerate(ids):
        assert wait_for_status(api, instance_id, "COMPLETED")["output"] == {"echo": {"n": n}}

    first = api.get("/api/instances", params={"prefix": prefix, "limit": 2}).json()
    assert len(first["items"]) == 2 and first["next_offset"] == 2
    rest = api.get("/api/instances", params={"prefix": prefix, "limit": 2, "offset": 2}).json()
    assert len(rest["items"]) == 1 and rest["next_offset"] is None
    assert sorted(i["instance_id"] for i in first["items"] + rest["items"]) == ids  # newest first, each once

    def listed(**params: Any) -> set[str]:
        return {
            i["instance_id"] for i in api.get("/api/instances", params={"prefix": prefix, **params}).json()["items"]
        }

    assert listed(status="COMPLETED", name="plain_function") == set(ids)
    assert listed(status=["RUNNING", "FAILED"]) == set()
    assert listed(name="sequence") == set()
    created = first["items"][-1]["created_at"]
    assert listed(created_from=created) >= {first["items"][-1]["instance_id"]}
    assert listed(created_from="2999-01-01T00:00:00Z") == set()
    assert listed(created_to="2000-01-01T00:00:00") == set()  # naive: taken as UTC


def test_tags_on_start_in_the_state_and_as_a_filter(api: httpx.Client) -> None:
    team = unique("team")
    tagged = api.post("/api/orchestrations/plain_function", json={"input": 1, "tags": {"team": team}}).json()
    other = start(api, "plain_function", input=2)
    assert wait_for_status(api, tagged["instance_id"], "COMPLETED")["tags"] == {"team": team}
    assert wait_for_status(api, other, "COMPLETED")["tags"] == {}
    listed = api.get("/api/instances", params={"tag": f"team={team}"}).json()["items"]
    assert [item["instance_id"] for item in listed] == [tagged["instance_id"]]
    refused = api.get("/api/instances", params={"tag": "no-equals-sign"})
    assert refused.status_code == 422 and "name=value" in refused.json()["error"]["message"]
    bad = api.post("/api/orchestrations/plain_function", json={"tags": {"team": 7}})
    assert bad.status_code == 422 and "tags" in bad.json()["error"]["message"]


def test_an_approval_raised_by_http_resumes_a_waiting_orchestration(api: httpx.Client) -> None:
    instance_id = start(api, "approval", input={"timeout_seconds": 3600})
    wait_for_status(api, instance_id, "RUNNING")
    # A body that is not labelled JSON is refused: a page of another site can send a form or text/plain
    # without the browser asking first, but not application/json.
    for content_type in ("application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"):
        refused = api.post(
            f"/api/instances/{instance_id}/events/approval_received",
            content=b'{"approved": false}',
            headers={"Content-Type": content_type},
        )
        assert "Content-Type: application/json" in error_of(refused, 415, "unsupported_media_type")
    raised = api.post(
        f"/api/instances/{instance_id}/events/approval_received",
        content=b'{"approved": true}',
        headers={"Content-Type": "application/json"},
    )
    assert raised.status_code == 202, raised.text
    assert raised.json()["status_url"].endswith(f"/api/instances/{instance_id}")
    state = wait_for_status(api, instance_id, "COMPLETED")
    assert state["output"] == {"status": "approved", "data": {"approved": True}}
    error_of(api.post(f"/api/instances/{instance_id}/events/approval_received", json=1), 409, "invalid_instance_state")


def explain(api: httpx.Client, instance_id: str) -> dict[str, Any]:
    response = api.get(f"/api/instances/{instance_id}/explain")
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_explain_names_the_event_a_waiting_instance_waits_for(api: httpx.Client) -> None:
    instance_id = start(api, "approval", input={"timeout_seconds": 3600})
    # Once its first step ran, the instance waits for the approval (the API was built from the app,
    # so it replays the code to name the event).
    why = wait_until(
        lambda: (e := explain(api, instance_id))["reason"] == "waiting_for_event" and e,
        message="the instance to wait for its event",
    )
    assert why["needs_attention"] is False
    assert "'approval_received'" in why["message"]
    assert {"kind": "event", "name": "approval_received"}.items() <= why["pending"][0].items()
    assert [p["kind"] for p in why["pending"]] == ["event", "timer"]  # the timer it races
    assert why["pending"][1]["fires_at"] is not None
    api.post(f"/api/instances/{instance_id}/events/approval_received", json={"approved": True})
    wait_for_status(api, instance_id, "COMPLETED")
    assert explain(api, instance_id)["reason"] == "finished"
    error_of(api.get("/api/instances/ghost/explain"), 404, "instance_not_found")


def test_explain_says_no_live_worker_serves_an_orphaned_instance(services: Services) -> None:
    import workflows

    hub = new_taskhub("orphan")  # no worker runs this task hub
    with ApiServer(create_app(workflows.app, api_settings(services, hub))) as server, server.client() as http:
        instance_id = start(http, "approval", input={"timeout_seconds": 3600})
        why = explain(http, instance_id)
        assert why["reason"] == "no_worker"
        assert why["needs_attention"] is True
        assert f"no live worker of task hub {hub!r} serves orchestration 'approval'" in why["message"]
        [step] = why["pending"]
        assert step["kind"] == "step" and step["name"] == "approval" and step["served_by"] == []
        assert step["since"] is not None
        assert http.get("/api/workers").json() == {"items": []}


def test_workers_lists_the_live_worker_and_what_it_serves(api: httpx.Client, worker: WorkerProcess) -> None:
    response = api.get("/api/workers")
    assert response.status_code == 200, response.text
    [listed] = [w for w in response.json()["items"] if w["node_name"].startswith(f"{worker.name}@")]
    assert listed["live"] is True and listed["taskhub"] == worker.taskhub
    assert "approval" in listed["orchestrations"]
    assert listed["queues"] and listed["last_heartbeat_at"]
    everyone = api.get("/api/workers", params={"include_dead": "true"}).json()["items"]
    assert listed["worker_id"] in {w["worker_id"] for w in everyone}
    error_of(api.get("/api/workers", params={"include_dead": "maybe"}), 422, "invalid_input")


def test_suspend_resume_terminate_and_purge(api: httpx.Client) -> None:
    instance_id = start(api, "suspendable")
    wait_for_status(api, instance_id, "RUNNING")
    assert api.post(f"/api/instances/{instance_id}/suspend", json={"reason": "lunch"}).status_code == 202
    wait_for_status(api, instance_id, "SUSPENDED")
    assert api.post(f"/api/instances/{instance_id}/events/go", json=41).status_code == 202
    assert api.post(f"/api/instances/{instance_id}/resume").status_code == 202
    assert wait_for_status(api, instance_id, "COMPLETED")["output"] == 42

    purged = api.delete(f"/api/instances/{instance_id}")
    assert purged.status_code == 200 and purged.json() == {"instance_id": instance_id, "purged": 1}
    error_of(api.get(f"/api/instances/{instance_id}"), 404, "instance_not_found")

    waiter = start(api, "long_waiter")
    wait_for_status(api, waiter, "RUNNING")
    assert "COMPLETED, FAILED or TERMINATED" in error_of(
        api.delete(f"/api/instances/{waiter}"), 409, "invalid_instance_state"
    )
    assert api.post(f"/api/instances/{waiter}/terminate", json={"output": "stopped by hand"}).status_code == 202
    assert wait_for_status(api, waiter, "TERMINATED")["output"] == "stopped by hand"
    assert "already finished" in error_of(api.post(f"/api/instances/{waiter}/terminate"), 409, "invalid_instance_state")
    error_of(api.post(f"/api/instances/{waiter}/suspend"), 409, "invalid_instance_state")


def test_versions_rewind_and_restart_over_http(api: httpx.Client) -> None:
    versioned = start(api, "long_waiter", version="2.1")
    assert wait_for_status(api, versioned, "RUNNING")["version"] == "2.1"
    message = error_of(api.post(f"/api/instances/{versioned}/rewind"), 409, "invalid_instance_state")
    assert message == f"instance {versioned} is RUNNING; only a FAILED instance can be rewound"
    assert "only a finished" in error_of(api.post(f"/api/instances/{versioned}/restart"), 409, "invalid_instance_state")
    error_of(api.post("/api/orchestrations/long_waiter", json={"version": " 2"}), 422, "invalid_input")

    done = start(api, "sequence")
    first = wait_for_status(api, done, "COMPLETED")
    again = api.post(f"/api/instances/{done}/restart", json={"new_instance_id": True})
    assert again.status_code == 202, again.text
    restarted = again.json()["instance_id"]
    assert restarted != done and wait_for_status(api, restarted, "COMPLETED")["output"] == first["output"]
    assert api.get(f"/api/instances/{done}").json()["runtime_status"] == "COMPLETED"  # kept under its own id


def test_error_codes(api: httpx.Client) -> None:
    ghost = unique("ghost")
    for method, path in [
        ("GET", f"/api/instances/{ghost}"),
        ("GET", f"/api/instances/{ghost}/history"),
        ("POST", f"/api/instances/{ghost}/events/approval"),
        ("POST", f"/api/instances/{ghost}/terminate"),
        ("POST", f"/api/instances/{ghost}/suspend"),
        ("POST", f"/api/instances/{ghost}/resume"),
        ("DELETE", f"/api/instances/{ghost}"),
    ]:
        assert ghost in error_of(api.request(method, path), 404, "instance_not_found")
    assert "registered: " in error_of(api.post("/api/orchestrations/no_such_thing"), 404, "orchestration_not_found")

    # 409: an id in use by a running instance, even with reuse_id (only a finished one may be replaced).
    taken = start(api, "long_waiter", instance_id=unique("taken"))
    message = error_of(api.post("/api/orchestrations/long_waiter", json={"instance_id": taken}), 409, "instance_exists")
    assert taken in message and "already in use" in message
    error_of(
        api.post("/api/orchestrations/long_waiter", json={"instance_id": taken, "reuse_id": True}),
        409,
        "instance_exists",
    )
    api.post(f"/api/instances/{taken}/terminate")

    # 413: over the engine's payload limit, and a body too big to read at all.
    message = error_of(
        api.post("/api/orchestrations/echo_back", json={"input": "x" * MAX_PAYLOAD}), 413, "payload_too_large"
    )
    assert f"{MAX_PAYLOAD:,} bytes" in message
    error_of(api.post(f"/api/instances/{taken}/events/big", json="y" * MAX_PAYLOAD), 413, "payload_too_large")
    huge = b'"' + b"z" * (4 * MAX_PAYLOAD) + b'"'
    assert "the most this API reads" in error_of(
        api.post(f"/api/instances/{taken}/events/e", content=huge), 413, "payload_too_large"
    )

    # 422: every kind of invalid input, in the same JSON shape, with the offending field named.
    invalid = error_of(api.post("/api/orchestrations/echo_back", content=b"{not json"), 422, "invalid_input")
    assert "not valid JSON" in invalid
    assert "inputs" in error_of(api.post("/api/orchestrations/echo_back", json={"inputs": 1}), 422, "invalid_input")
    assert "limit" in error_of(api.get("/api/instances", params={"limit": 0}), 422, "invalid_input")
    assert "status" in error_of(api.get("/api/instances", params={"status": "SLEEPING"}), 422, "invalid_input")
    assert "created_from" in error_of(api.get("/api/instances", params={"created_from": "soon"}), 422, "invalid_input")
    error_of(api.post("/api/orchestrations/echo_back", json={"instance_id": "a/b"}), 422, "invalid_input")
    error_of(api.post("/api/orchestrations/echo_back", json={"start_at": "2030-01-01T00:00:00"}), 422, "invalid_input")
    assert "NUL" in error_of(
        api.post("/api/orchestrations/echo_back", json={"input": {"k": "a\x00b"}}), 422, "invalid_input"
    )
    assert "finite" in error_of(
        api.post("/api/orchestrations/echo_back", content=b'{"input": NaN}'), 422, "invalid_input"
    )
    response = api.get("/api/instances", params={"limit": "many"})
    assert response.json()["error"]["details"][0]["loc"] == ["query", "limit"]

    error_of(api.get("/api/nowhere"), 404, "not_found")
    error_of(api.put("/api/instances"), 405, "method_not_allowed")


def test_times_outside_what_every_store_holds(api: httpx.Client) -> None:
    far = "9999-12-31T23:59:59-14:00"  # year 10000 in UTC, which PostgreSQL stores and Python cannot read
    message = error_of(api.post("/api/orchestrations/plain_function", json={"start_at": far}), 422, "invalid_input")
    assert "body.start_at" in message and "out of range: give a time between 1970-01-01 and 9999-01-01 UTC" in message
    listed = api.get("/api/instances", params={"created_from": far})  # a filter's bound is moved into the range
    assert listed.status_code == 200 and listed.json()["items"] == []


def test_authentication(api_server: ApiServer) -> None:
    with api_server.client(key=None) as anonymous:
        refused = anonymous.get("/api/instances")
        assert "Authorization: Bearer" in error_of(refused, 401, "unauthorized")
        assert refused.headers["www-authenticate"] == "Bearer"
        for answer in (refused, anonymous.get("/healthz")):  # data, never a page: not sniffed, framed or run
            assert answer.headers["x-content-type-options"] == "nosniff" and answer.headers["x-frame-options"] == "DENY"
            assert answer.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
        error_of(anonymous.post("/api/orchestrations/sequence"), 401, "unauthorized")
        assert anonymous.get("/healthz").json() == {"status": "ok"}
        assert anonymous.get("/openapi.json").json()["paths"]["/api/instances/{instance_id}/events/{event_name}"]
    with api_server.client(key="not-a-key-of-anyone-at-all") as wrong:
        error_of(wrong.get("/api/instances"), 401, "unauthorized")
    with api_server.client(key=OTHER_KEY) as other_hub:
        message = error_of(other_hub.get("/api/instances"), 403, "wrong_taskhub")
        assert f"belongs to task hub {OTHER_HUB!r}" in message


def test_without_keys_only_loopback_names_and_this_servers_pages_are_served(
    services: Services, worker: WorkerProcess
) -> None:
    import workflows

    settings = api_settings(services, worker.taskhub, api_auth="disabled", api_keys="")
    with ApiServer(create_app(workflows.app, settings)) as server, server.client(key=None) as http:
        port = server.url.rsplit(":", 1)[1]
        # DNS rebinding: a name of the attacker's that resolves to this machine reads nothing.
        rebound = http.get("/api/instances", headers={"Host": f"rebind.attacker.example:{port}"})
        assert "DURABLE_AGENTS_ALLOWED_HOSTS" in error_of(rebound, 403, "forbidden_origin")
        error_of(http.get("/readyz", headers={"Host": "rebind.attacker.example"}), 403, "forbidden_origin")
        assert http.get("/api/instances", headers={"Host": f"localhost:{port}"}).status_code == 200
        # A page of another origin (another port of this machine is one) changes nothing.
        other_port = f"http://127.0.0.1:{int(port) + 1}"
        forged = http.post("/api/orchestrations/plain_function", json={}, headers={"Origin": other_port})
        assert "another site" in error_of(forged, 403, "forbidden_origin")
        error_of(
            http.post("/api/orchestrations/plain_function", json={}, headers={"Origin": "null"}),
            403,
            "forbidden_origin",
        )
        assert (
            http.post("/api/orchestrations/plain_function", json={}, headers={"Origin": server.url}).status_code == 202
        )

    named = api_settings(services, worker.taskhub, allowed_hosts="durable.internal, api.example.com:8443")
    with ApiServer(create_app(workflows.app, named)) as server, server.client() as http:
        assert http.get("/api/instances", headers={"Host": "api.example.com"}).status_code == 200
        error_of(http.get("/api/instances", headers={"Host": "elsewhere.example"}), 403, "forbidden_origin")


def test_auth_configuration_is_refused_when_unsafe(services: Services) -> None:
    with pytest.raises(ConfigurationError, match="needs an API key for task hub 'lonely'"):
        create_app(settings=api_settings(services, "lonely", api_keys=f"{OTHER_HUB}:{OTHER_KEY}"))
    with pytest.raises(ConfigurationError, match="at least 16"):
        create_app(settings=api_settings(services, "short", api_keys="short:abc"))
    open_settings = api_settings(services, "open", api_keys="", api_auth="disabled")
    with pytest.raises(ConfigurationError, match="not loopback"):
        check_bind(open_settings, "0.0.0.0")
    check_bind(open_settings, "127.0.0.1")
    check_bind(open_settings, "::1")

    async def as_client(host: str) -> httpx.Response:
        transport = httpx.ASGITransport(create_app(settings=open_settings), client=(host, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            return await http.get("/api/instances")

    assert asyncio.run(as_client("127.0.0.1")).status_code == 200
    assert "loopback clients only" in error_of(asyncio.run(as_client("203.0.113.9")), 403, "forbidden")


def test_the_router_mounts_into_your_own_app(services: Services, worker: WorkerProcess) -> None:
    import workflows

    own = FastAPI()
    own.include_router(router(workflows.app, api_settings(services, worker.taskhub)), prefix="/durable")
    own.include_router(router(workflows.app, api_settings(services, OTHER_HUB)), prefix="/other")

    async def calls() -> list[httpx.Response]:
        transport = httpx.ASGITransport(own)
        headers = {"Authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://mine", headers=headers) as http:
            return [
                await http.post("/durable/api/orchestrations/plain_function", json={"input": 7}),
                await http.get("/durable/api/instances/ghost"),
                await http.get("/durable/api/instances", params={"limit": -1}),
                await http.get("/durable/api/instances", headers={"Authorization": f"Bearer {OTHER_KEY}"}),
                await http.post(
                    "/other/api/orchestrations/plain_function", headers={"Authorization": f"Bearer {OTHER_KEY}"}
                ),
            ]

    started, missing, invalid, foreign, elsewhere = asyncio.run(calls())
    assert started.status_code == 202
    assert started.json()["status_url"] == f"http://mine/durable/api/instances/{started.json()['instance_id']}"
    # Routers of two task hubs in one app: each links to its own routes.
    assert elsewhere.json()["status_url"] == f"http://mine/other/api/instances/{elsewhere.json()['instance_id']}"
    error_of(missing, 404, "instance_not_found")  # the error shape travels with the routes
    error_of(invalid, 422, "invalid_input")
    error_of(foreign, 403, "wrong_taskhub")


def test_readiness_checks_database_schema_and_redis(services: Services, api_server: ApiServer) -> None:
    with api_server.client(key=None) as http:
        ready = http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "schema": "ok", "redis": "ok"}}

    def readiness(key: str | None = KEY, **overrides: Any) -> httpx.Response:
        async def probe() -> httpx.Response:
            app = FastAPI()  # the routes alone: the API must start, and say why it is not ready, with services down
            app.include_router(router(settings=api_settings(services, "probe", **overrides)))
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://api") as http:
                return await http.get("/readyz", headers=headers)

        return asyncio.run(probe())

    dead = {"database_url": "postgresql+psycopg://postgres@127.0.0.1:1/nowhere", "redis_url": "redis://127.0.0.1:1/0"}
    down = readiness(**dead, api_keys=f"probe:{KEY}")
    assert down.status_code == 503
    checks = down.json()["checks"]
    assert "cannot connect to the database" in checks["database"] and checks["redis"].startswith("unreachable")
    # Without a key of the task hub the probe says what fails, not the database's user, host or name.
    anonymous = readiness(None, **dead, api_keys=f"probe:{KEY}")
    assert anonymous.status_code == 503
    assert anonymous.json()["checks"] == {"database": "failing", "schema": "failing", "redis": "failing"}
    assert "nowhere" not in anonymous.text and "postgres@" not in anonymous.text and "127.0.0.1" not in anonymous.text
    assert "Authorization: Bearer" in anonymous.json()["detail"]

    empty_url = services.database_url.rsplit("/", 1)[0] + "/" + services.database_url.rsplit("/", 1)[1] + "_noschema"
    create_database_if_missing(empty_url)
    unmigrated = readiness(database_url=empty_url, api_keys=f"probe:{KEY}")
    assert unmigrated.status_code == 503
    assert "durable-agents db upgrade" in unmigrated.json()["checks"]["schema"]
    assert unmigrated.json()["checks"]["redis"] == "ok"


# -- the command --------------------------------------------------------------------------------


def test_the_api_command_serves_and_refuses_unsafe_settings(services: Services, worker: WorkerProcess) -> None:
    env = {"DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url, "TASKHUB": worker.taskhub}
    exposed = run_cli("api", "workflows:app", "--host", "0.0.0.0", env={**env, "DURABLE_AGENTS_API_AUTH": "disabled"})
    assert exposed.returncode == 1 and "not loopback" in exposed.stderr, exposed.stderr
    keyless = run_cli("api", "--port", "1", env=env)
    assert keyless.returncode == 1 and "DURABLE_AGENTS_API_KEYS" in keyless.stderr, keyless.stderr

    port = bind_socket("127.0.0.1", 0)
    number = port.getsockname()[1]
    port.close()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "durable_agents",
            "api",
            "workflows:app",
            "--port",
            str(number),
            "--log-level",
            "warning",
        ],
        env={
            **os.environ,
            **env,
            "PYTHONPATH": python_path(str(TESTS_DIR)),
            "DURABLE_AGENTS_API_KEYS": f"{worker.taskhub}:{KEY}",
        },
        cwd=TESTS_DIR,
        start_new_session=True,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{number}", headers={"Authorization": f"Bearer {KEY}"}) as http:

            def healthy() -> bool:
                try:
                    return http.get("/healthz").status_code == 200
                except httpx.TransportError:
                    assert process.poll() is None, "the api command exited"
                    return False

            wait_until(healthy, timeout=60, message="durable-agents api to serve")
            names = http.get("/api/orchestrations").json()["names"]
            assert "approval" in names and not any(n.startswith("durable_agents.") for n in names)
            instance_id = http.post("/api/orchestrations/plain_function", json={"input": "cli"}).json()["instance_id"]
            assert wait_for_status(http, instance_id, "COMPLETED")["output"] == {"echo": "cli"}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


# -- agents -----------------------------------------------------------------------------------


def test_agent_run_waiting_and_202_then_session_read_and_reset(agents_api: httpx.Client) -> None:
    session = unique("s")
    first = agents_api.post("/api/agents/Joker/run", json={"message": "Hi", "session": session})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["text"] == "Reply to: Hi (turn 1)" and body["session"] == session and body["agent"] == "Joker"
    assert body["usage"]["total_tokens"] > 0 and body["messages"][-1]["role"] == "assistant"

    later = agents_api.post("/api/agents/Joker/run", json={"message": "Another", "session": session, "wait": False})
    assert later.status_code == 202, later.text
    accepted = later.json()
    assert accepted["correlation_id"] and accepted["stream_url"].endswith(f"/api/streams/{accepted['correlation_id']}")
    answer = agents_api.get(accepted["response_url"], params={"wait": 60})
    assert answer.status_code == 200, answer.text
    assert answer.json()["text"] == "Reply to: Another (turn 2)"
    assert answer.json()["correlation_id"] == accepted["correlation_id"]

    stored = agents_api.get(f"/api/agents/Joker/sessions/{session}").json()
    assert stored["turn_count"] == 2 and stored["message_count"] == 4
    assert [m["content"] for m in stored["messages"] if m["role"] == "user"] == ["Hi", "Another"]
    listed = agents_api.get("/api/agents/Joker/sessions", params={"limit": 1000}).json()["items"]
    assert session in {s["session_key"] for s in listed}

    reset = agents_api.post(f"/api/agents/Joker/sessions/{session}/reset")
    assert reset.status_code == 200 and reset.json()["message_count"] == 0 and reset.json()["messages"] == []
    again = agents_api.post(
        "/api/agents/Joker/run", json={"message": [{"role": "user", "content": "Fresh"}], "session": session}
    )
    assert again.json()["text"] == "Reply to: Fresh (turn 1)"  # the conversation was forgotten

    assert agents_api.delete(f"/api/agents/Joker/sessions/{session}").status_code == 204
    error_of(agents_api.get(f"/api/agents/Joker/sessions/{session}"), 404, "session_not_found")


def test_a_session_key_with_slashes_is_read_reset_and_deleted(agents_api: httpx.Client) -> None:
    session = f"team/{unique('alpha')}/west"
    ran = agents_api.post("/api/agents/Joker/run", json={"message": "Hi", "session": session})
    assert ran.status_code == 200 and ran.json()["session"] == session, ran.text
    for path in (session, session.replace("/", "%2F")):  # as typed, or encoded as a client library does
        read = agents_api.get(f"/api/agents/Joker/sessions/{path}")
        assert read.status_code == 200 and read.json()["session_key"] == session, read.text
    reset = agents_api.post(f"/api/agents/Joker/sessions/{session}/reset")
    assert reset.status_code == 200 and reset.json()["session_key"] == session and reset.json()["messages"] == []
    assert agents_api.delete(f"/api/agents/Joker/sessions/{session}").status_code == 204
    error_of(agents_api.get(f"/api/agents/Joker/sessions/{session}"), 404, "session_not_found")


def test_agent_errors(agents_api: httpx.Client, model_server: TestModelServer) -> None:
    assert "registered: " in error_of(
        agents_api.post("/api/agents/Nobody/run", json={"message": "Hi"}), 404, "agent_not_found"
    )
    error_of(agents_api.get("/api/agents/Nobody/sessions"), 404, "agent_not_found")
    error_of(agents_api.get(f"/api/agents/Joker/sessions/{unique('none')}"), 404, "session_not_found")
    error_of(agents_api.get(f"/api/agents/Joker/runs/{uuid.uuid4().hex}"), 404, "run_not_found")
    error_of(agents_api.post("/api/agents/Joker/run", json={"message": "   "}), 422, "invalid_input")
    error_of(agents_api.post("/api/agents/Joker/run", json={"message": "Hi", "timeout": 0}), 422, "invalid_input")
    error_of(agents_api.post("/api/agents/Joker/run", json={"message": "x" * MAX_PAYLOAD}), 413, "payload_too_large")
    assert "Joker" in agents_api.get("/api/agents").json()["names"]

    model_server.control.inject({"kind": "server_error", "status": 400, "repeat": True, "message": "no such model"})
    failed = agents_api.post("/api/agents/Joker/run", json={"message": "Fail", "session": unique("f")})
    assert "HTTP 400" in error_of(failed, 502, "agent_run_failed")


# -- streams ----------------------------------------------------------------------------------


def sse_events(response: httpx.Response, limit: int | None = None) -> list[dict[str, Any]]:
    """Parse Server-Sent Events off the wire until the stream ends (or `limit` events)."""
    import json

    events: list[dict[str, Any]] = []
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line == "":
            if "data" in fields:
                events.append(
                    {"id": fields.get("id"), "event": fields.get("event"), "data": json.loads(fields["data"])}
                )
                if limit is not None and len(events) == limit:
                    break
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
    return events


def entry_id(event_id: str) -> tuple[int, int]:
    milliseconds, _, sequence = event_id.partition("-")
    return int(milliseconds), int(sequence)


def test_sse_resumes_with_last_event_id_without_gap_or_duplicate(
    agents_server: ApiServer, agents_api: httpx.Client, model_server: TestModelServer
) -> None:
    model_server.control.add_rule(reply={"content": WORDS, "chunk_delay_ms": 40})
    run = agents_api.post(
        "/api/agents/Joker/run", json={"message": "Stream to me", "session": unique("sse"), "wait": False}
    )
    stream_url = run.json()["stream_url"]

    with agents_api.stream("GET", stream_url) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        first = sse_events(response, limit=4)
    assert [e["event"] for e in first] == ["chunk"] * 4
    with agents_api.stream("GET", stream_url, headers={"Last-Event-ID": first[-1]["id"]}) as response:
        rest = sse_events(response)

    events = first + rest
    assert [e["data"]["seq"] for e in events] == list(range(len(events)))  # in order, none twice, none missing
    ids = [entry_id(e["id"]) for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert events[-1]["event"] == "complete" and len(events) == 13  # a chunk a word, then the completion
    text = "".join(e["data"]["text"] for e in events)
    assert text == WORDS == agents_api.get(run.json()["response_url"], params={"wait": 30}).json()["text"]

    # Resuming after the end says there is nothing more (EventSource stops reconnecting on 204).
    assert agents_api.get(stream_url, headers={"Last-Event-ID": events[-1]["id"]}).status_code == 204
    # Any cursor resumes right after it, also as a query parameter.
    with agents_api.stream("GET", stream_url, params={"cursor": events[5]["id"]}) as response:
        assert [e["data"]["seq"] for e in sse_events(response)] == list(range(6, 13))

    missing = agents_api.get(f"/api/streams/{uuid.uuid4().hex}", params={"start_timeout": 0})
    assert "no response stream" in error_of(missing, 404, "stream_not_found")
    gone = agents_api.get(f"/api/streams/{uuid.uuid4().hex}", headers={"Last-Event-ID": "1-0"})
    error_of(gone, 404, "stream_not_found")
    error_of(agents_api.get(stream_url, headers={"Last-Event-ID": "yesterday"}), 422, "invalid_input")


def test_sse_answers_an_unknown_reply_at_once_and_503_when_redis_is_down(
    services: Services, agents_api: httpx.Client
) -> None:
    started = time.monotonic()
    unknown = agents_api.get(f"/api/streams/{uuid.uuid4().hex}", params={"start_timeout": 60}, timeout=20)
    assert "no response stream" in error_of(unknown, 404, "stream_not_found")  # no turn was asked for: no wait
    assert time.monotonic() - started < 20

    async def follow() -> httpx.Response:
        app = FastAPI()  # Redis is down: an error event after a 200 would make EventSource retry for ever
        app.include_router(router(settings=api_settings(services, "noredis", redis_url="redis://127.0.0.1:1/0")))
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api", headers={"Authorization": f"Bearer {KEY}"}
        ) as http:
            return await http.get(f"/api/streams/{uuid.uuid4().hex}")

    unavailable = asyncio.run(follow())
    assert "Redis is unreachable" in error_of(unavailable, 503, "service_unavailable")


def test_sse_reports_a_failed_run_as_an_error_event(agents_api: httpx.Client, model_server: TestModelServer) -> None:
    model_server.control.inject({"kind": "server_error", "status": 400, "repeat": True, "message": "no such model"})
    run = agents_api.post("/api/agents/Joker/run", json={"message": "Fail", "session": unique("e"), "wait": False})
    with agents_api.stream("GET", run.json()["stream_url"]) as response:
        events = sse_events(response)
    assert events[-1]["event"] == "error" and events[-1]["data"]["code"] == "agent_run_failed"
    assert "HTTP 400" in events[-1]["data"]["message"]


def test_openapi_docs_are_served_without_a_cdn(api: httpx.Client) -> None:
    import re

    page = api.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(asset.startswith("/") for asset in assets), assets
    assert all(api.get(asset).status_code == 200 for asset in assets)
    assert api.get("/openapi.json").json()["info"]["title"] == "durable-agents"
