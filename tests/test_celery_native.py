"""Celery's settings are the user's, activities go to the queues they name, `-Q` knows the hub's queues, and
DURABLE_AGENTS_LOG_FORMAT=json writes one JSON object per line about the work it describes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import routing_app
from durable_agents import DurableApp, DurableClient
from durable_agents.celery_config import check_celery_config
from durable_agents.diagnosis import Reason
from durable_agents.errors import ConfigurationError

from conftest import TESTS_DIR, Services, WorkerProcess, new_taskhub, python_path, wait_until


@pytest.fixture(scope="module")
def routing_worker(services: Services, effects_dir: Path) -> Iterator[WorkerProcess]:
    """The app's default queues only (not `gpu`), with JSON logs."""
    process = WorkerProcess(
        services,
        effects_dir,
        new_taskhub("route"),
        concurrency=2,
        module="routing_app:app",
        extra_env={"DURABLE_AGENTS_LOG_FORMAT": "json"},
    ).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def routing_client(services: Services, routing_worker: WorkerProcess) -> DurableClient:
    return DurableClient(
        routing_app.app,
        taskhub=routing_worker.taskhub,
        database_url=services.database_url,
        redis_url=services.redis_url,
    )


def node(process: WorkerProcess) -> str:
    return f"{process.name}@{socket.gethostname()}"


def test_the_prefetch_multiplier_given_to_durable_app_is_the_one_the_worker_uses(
    routing_client: DurableClient, routing_worker: WorkerProcess
) -> None:
    stats = routing_client.app.control.inspect(destination=[node(routing_worker)], timeout=5).stats()
    assert stats[node(routing_worker)]["prefetch_count"] == routing_worker.concurrency * routing_app.PREFETCH_MULTIPLIER


def test_config_from_object_wins_over_engine_defaults_and_pickle_is_refused(services: Services) -> None:
    urls = {"database_url": services.database_url, "redis_url": services.redis_url}
    assert DurableApp(**urls).conf.worker_prefetch_multiplier == 1  # the engine's documented default
    app = DurableApp(**urls)
    app.config_from_object({"worker_prefetch_multiplier": 8, "result_expires": 60})
    assert (app.conf.worker_prefetch_multiplier, app.conf.result_expires) == (8, 60)
    check_celery_config(app)
    with pytest.raises(ConfigurationError, match=r"accept_content=\['json', 'pickle'\] allows pickle"):
        check_celery_config(DurableApp(accept_content=["json", "pickle"], **urls))
    # Routing options are checked where they are given, each with a one-line message.
    with pytest.raises(ValueError, match="queue 'gpu.fast' is not a short queue name"):
        app.activity(queue="gpu.fast")
    with pytest.raises(ValueError, match="rate_limit 'often' is not a rate: use e.g. '10/s'"):
        app.activity(rate_limit="often")
    with pytest.raises(ValueError, match="priority -1 is not a message priority"):
        app.activity(priority=-1)


def test_an_activity_or_orchestration_on_its_own_queue_runs_only_on_a_worker_consuming_it(
    routing_client: DurableClient, routing_worker: WorkerProcess, start_worker: Any
) -> None:
    instance_id = routing_client.schedule_new_orchestration("use_gpu", input=7)
    pipeline_id = routing_client.schedule_new_orchestration("gpu_pipeline", input=8)
    # The live worker does not consume `gpu`: the activity and the orchestration wait, and `explain` says so.
    why = wait_until(
        lambda: (e := routing_client.explain(instance_id)).reason == Reason.NO_WORKER and e,
        message="the activity to wait for a gpu worker",
    )
    assert [p.name for p in why.pending] == ["on_gpu"]
    assert routing_client.explain(pipeline_id).reason == Reason.NO_WORKER

    command = [
        sys.executable, "-m", "durable_agents", "worker", "routing_app:app", "--queues", "gpu",
        "--pool", "threads", "--concurrency", "1", "--hostname", f"gpu-{routing_worker.name}@%h",
    ]  # fmt: skip
    gpu = start_worker(routing_worker.taskhub, module="routing_app:app", command=command)
    state = routing_client.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state.output == {"value": 7, "pid": gpu.process.pid}
    # The pipeline's steps ran on the gpu worker, its activity on the other.
    pipeline = routing_client.wait_for_orchestration_completion(pipeline_id, timeout=30)
    assert pipeline.output == {"value": 8, "pid": routing_worker.process.pid}
    assert "Task orchestration:gpu_pipeline[" in gpu.log_path.read_text()
    assert "orchestration:gpu_pipeline" not in routing_worker.log_path.read_text()
    [record] = [w for w in routing_client.list_workers() if w.pid == gpu.process.pid]
    assert record.queues == (f"durable_agents.{routing_worker.taskhub}.gpu",)
    assert (record.orchestrations, record.activities) == (("gpu_pipeline",), ("on_gpu",))


def test_an_unknown_short_queue_name_is_refused_with_the_hubs_queues(services: Services) -> None:
    hub = new_taskhub("q")
    env = {"DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url, "TASKHUB": hub}
    expected = f"-Q 'nosuch' is not a queue of task hub '{hub}'; its queues are orchestrator, activities, agents, gpu"

    commands = [
        [sys.executable, "-m", "durable_agents", "worker", "routing_app:app", "--queues", "activities,nosuch"],
        [sys.executable, "-m", "celery", "-A", "routing_app:app", "worker", "-Q", "nosuch", "--pool", "solo"],
    ]
    env = {**os.environ, **env, "PYTHONPATH": python_path(str(TESTS_DIR))}
    # Both at once: each is a second or two of imports.
    started = [subprocess.Popen(c, env=env, cwd=TESTS_DIR, stderr=subprocess.PIPE, text=True) for c in commands]
    for process in started:
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 1 and expected in stderr and "Traceback" not in stderr, stderr


def test_json_logs_carry_the_instance_name_attempt_task_and_trace(
    routing_client: DurableClient, routing_worker: WorkerProcess
) -> None:
    instance_id = routing_client.schedule_new_orchestration("log_and_limit", input="hello")
    state = routing_client.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state.output == ["hello", [0, 2, 4]]

    def lines() -> list[dict[str, Any]]:
        text = routing_worker.log_path.read_text()
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    def about(message: str) -> dict[str, Any] | None:
        return next((line for line in lines() if line["message"] == message), None)

    inside = wait_until(lambda: about("inside a span: hello"), message="the activity's log line")
    assert inside["instance_id"] == instance_id and inside["name"] == "logged" and inside["attempt"] == 1
    assert inside["logger"] == "durable_agents.tests.routing" and inside["level"] == "WARNING"
    assert inside["task_id"] and inside["trace_id"] == format(routing_app.TRACE_ID, "032x")
    outside = about("outside any span: hello")
    assert outside is not None and outside["instance_id"] == instance_id and "trace_id" not in outside

    # Celery's own lines name what each message runs: the rate-limited activity is a message each.
    received = [
        line for line in lines() if line["message"].endswith("received") and line.get("task") == "activity:limited"
    ]
    assert len([line for line in received if instance_id in line["args"]]) == 3


def test_an_agents_steps_are_named_by_the_agent(agents: Any, agents_worker: WorkerProcess) -> None:
    reply = agents.get_agent("Joker").run_sync("Tell me a joke about queues", session="celery-rows")
    assert reply.text.startswith("Reply to: Tell me a joke about queues")
    # Its session's and its turn's steps: the worker's log says whose they are.
    wait_until(lambda: "Task agent:Joker[" in agents_worker.log_path.read_text(), message="a row named by the agent")
