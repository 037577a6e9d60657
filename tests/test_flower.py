"""A workflow triggered through Flower's HTTP API runs to completion, and Flower shows named task rows."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from durable_agents.errors import OrchestrationNotRegisteredError
from durable_agents.tasks.trigger import START_TASK

from conftest import ARTIFACTS, TESTS_DIR, Services, WorkerProcess, make_client, python_path, wait_until

AUTH = ("admin", "s3cret-for-tests")


@dataclass(frozen=True)
class Flower:
    url: str
    taskhub: str


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def responds(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthcheck", timeout=2).text == "OK"
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def flower(services: Services, worker: WorkerProcess) -> Iterator[Flower]:
    """`celery -A workflows:app flower` for the worker's task hub, with basic auth on its UI and API."""
    port = free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log = (ARTIFACTS / "flower.log").open("ab")
    env = {
        **os.environ,
        "PYTHONPATH": python_path(str(TESTS_DIR)),
        "DATABASE_URL": services.database_url,
        "REDIS_URL": services.redis_url,
        "TASKHUB": worker.taskhub,
    }
    command = [
        sys.executable, "-m", "celery", "-A", "workflows:app", "flower",
        "--address=127.0.0.1", f"--port={port}", f"--basic-auth={AUTH[0]}:{AUTH[1]}",
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env, cwd=TESTS_DIR, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: process.poll() is not None or responds(url), timeout=60, message="Flower to listen")
        assert process.poll() is None, (ARTIFACTS / "flower.log").read_text()[-3000:]
        yield Flower(url, worker.taskhub)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def test_flower_api_starts_an_orchestration_that_completes(services: Services, flower: Flower) -> None:
    instance_id = f"flower-{uuid.uuid4().hex[:8]}"
    response = httpx.post(
        f"{flower.url}/api/task/async-apply/{START_TASK}",
        json={"args": ["chain", 5], "kwargs": {"instance_id": instance_id}},
        auth=AUTH,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    task_id = response.json()["task-id"]

    client = make_client(services, flower.taskhub)
    state = client.wait_for_orchestration_completion(instance_id, timeout=60, missing_ok=True)
    assert (state.name, state.input, state.output) == ("chain", 5, 15)

    # The task's result is the instance id, as Flower reports it.
    result = httpx.get(f"{flower.url}/api/task/result/{task_id}", auth=AUTH, timeout=30).json()
    assert (result["state"], result["result"]) == ("SUCCESS", instance_id)

    # Events are on, so Flower lists named rows: the trigger, and the steps of the instance it started.
    listed = wait_until(lambda: (r := rows(flower)) and task_id in r and r[task_id]["state"] == "SUCCESS" and r)
    assert listed[task_id]["name"] == START_TASK
    steps = [row for row in listed.values() if row["name"] == "orchestration:chain"]
    assert any(instance_id in (row.get("args") or "") for row in steps)  # a step's row names its instance


def rows(flower: Flower) -> dict[str, Any]:
    listed: dict[str, Any] = httpx.get(f"{flower.url}/api/tasks", auth=AUTH, timeout=30).json()
    return listed


def test_flower_lists_a_fan_outs_activities_by_name(services: Services, flower: Flower) -> None:
    client = make_client(services, flower.taskhub)
    instance_id = client.schedule_new_orchestration("fan_out", input=12)
    assert client.wait_for_orchestration_completion(instance_id, timeout=60).output == sum(i * i for i in range(12))

    def of_instance() -> list[dict[str, Any]]:
        return [row for row in rows(flower).values() if instance_id in (row.get("args") or "")]

    # The drainers name the activity they work through and their share; the fan-in's step its orchestration.
    named = wait_until(
        lambda: (
            (found := of_instance())
            and {"drain:square", "orchestration:fan_out"} <= {r["name"] for r in found}
            and found
        )
    )
    drainers = [row for row in named if row["name"] == "drain:square"]
    assert all(row["state"] == "SUCCESS" and "items=" in row["args"] for row in drainers)
    assert sum(int(row["args"].split("items=")[1].split()[0]) for row in drainers) == 12


def test_flower_refuses_the_api_without_credentials_and_reports_unknown_names(
    services: Services, flower: Flower
) -> None:
    trigger = f"{flower.url}/api/task/async-apply/{START_TASK}"
    assert httpx.post(trigger, json={"args": ["chain", 1]}, timeout=30).status_code == 401

    response = httpx.post(trigger, json={"args": ["no_such_workflow"]}, auth=AUTH, timeout=30)
    task_id = response.json()["task-id"]

    def outcome() -> dict[str, Any] | None:
        result: dict[str, Any] = httpx.get(f"{flower.url}/api/task/result/{task_id}", auth=AUTH, timeout=30).json()
        return result if result["state"] != "PENDING" else None

    failed = wait_until(outcome, message="the trigger task to fail")
    # The error comes back from Celery's JSON result as it was raised, its message said once.
    message = "no orchestration named 'no_such_workflow' is registered (registered: "
    assert failed["state"] == "FAILURE" and failed["result"].startswith(f'OrchestrationNotRegisteredError("{message}')
    assert failed["result"].count("no orchestration named") == 1 and "chain" in failed["result"]
    error = make_client(services, flower.taskhub).app.AsyncResult(task_id).get(timeout=30, propagate=False)
    assert isinstance(error, OrchestrationNotRegisteredError) and error.name == "no_such_workflow"
    assert str(error).startswith(message) and str(error).count("no orchestration named") == 1
