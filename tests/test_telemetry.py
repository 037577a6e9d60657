"""Telemetry across processes: one trace from a client through two workers (spans sent over OTLP to a receiver
this module runs), no duplicate spans when steps replay, and `/metrics` of a prefork worker and of the API."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from otlp_receiver import OtlpReceiver

from conftest import (
    TESTS_DIR,
    Services,
    WorkerProcess,
    new_taskhub,
    python_path,
    run_cli,
    wait_until,
)

MODEL_CALL = "durable_agents.agent_model_call"
TOOL_CALL = "durable_agents.agent_tool_call"
AGENT_TURN = "durable_agents.agent_turn"


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    service: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    #: The status's code: 0 unset, 1 ok, 2 error.
    status: int = 0


class Receiver(OtlpReceiver):
    """What every process's exporter sends, decoded."""

    @property
    def spans(self) -> list[ReceivedSpan]:
        spans = []
        for request in self.requests():
            for resource in request.resource_spans:
                service = next(a.value.string_value for a in resource.resource.attributes if a.key == "service.name")
                for scope in resource.scope_spans:
                    spans.extend(_received(service, span) for span in scope.spans)
        return spans


def _received(service: str, span: Any) -> ReceivedSpan:
    attributes = {a.key: getattr(a.value, a.value.WhichOneof("value")) for a in span.attributes}
    return ReceivedSpan(
        span.name, service, span.trace_id.hex(), span.span_id.hex(), span.parent_span_id.hex(), attributes,
        span.status.code,
    )  # fmt: skip


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Run:
    receiver: Receiver
    hub: str
    turn_id: str
    #: The steps the turn's history records.
    turn_steps: int
    metrics_port: int
    api_port: int


@pytest.fixture(scope="module")
def traced_run(
    services: Services, effects_dir: Path, model_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Run]:
    """One agent turn with an inline and a durable tool: its steps on worker A (which keeps no live
    executors, so every step replays its history), its model and tool calls on worker B (prefork)."""
    receiver = Receiver()
    hub = new_taskhub("otel")
    metrics_port, metrics_dir = _free_port(), tmp_path_factory.mktemp("metrics")
    control = model_server.control
    control.reset()
    control.add_rule(
        match={"last_message_role": "user", "tool_offered": "book_flight"},
        reply={"tool_calls": [{"name": "weather", "arguments": {"city": "Oslo"}},
                              {"name": "book_flight", "arguments": {"destination": "Oslo", "passengers": 2}}]},
    )  # fmt: skip
    control.add_rule(match={"last_message_role": "tool"}, reply={"content": "Booked; 21 degrees."})
    base = {"MODEL_SERVER_URL": model_server.url, "PYTHONPATH": python_path(str(TESTS_DIR))}

    def worker(queues: str, service: str, *options: str, **env: str) -> WorkerProcess:
        process = WorkerProcess(services, effects_dir, hub, module="agents_app:app", lease_seconds=5.0,
                                extra_env={**base, **receiver.env(service), **env})  # fmt: skip
        process.command = [sys.executable, "-m", "durable_agents", "worker", "agents_app:app", "-Q", queues,
                           "--loglevel", "INFO", "--hostname", f"{process.name}@%h", *options]  # fmt: skip
        return process

    orchestrator = worker("orchestrator", "worker-a", "--pool", "threads", "-c", "4",
                          DURABLE_AGENTS_REPLAY_CACHE_SIZE="0")  # fmt: skip
    runner = worker("agents,activities", "worker-b", "--pool", "prefork", "-c", "2",
                    "--metrics-port", str(metrics_port), PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))  # fmt: skip
    script = (
        "import sys, agents_app\n"
        "from opentelemetry import trace\n"
        "from durable_agents import DurableAgentClient, DurableClient\n"
        "client = DurableClient(agents_app.app, taskhub=sys.argv[1], database_url=sys.argv[2], redis_url=sys.argv[3])\n"
        "reply = DurableAgentClient(client).get_agent('ToolUser').run_sync('Fly me to Oslo', session='otel')\n"
        "from durable_agents.ids import agent_turn_instance_id\n"
        "turn = agent_turn_instance_id(reply.correlation_id)\n"
        "try:\n"
        "    client.raise_orchestration_event(turn, 'nudge')  # refused: the turn has ended\n"
        "except Exception:\n"
        "    pass\n"
        "assert client.terminate_orchestration(turn) is False\n"
        "trace.get_tracer_provider().shutdown()\n"
        "history = client.get_history(turn)\n"
        "print(reply.correlation_id, sum(1 for event in history if event['type'] == 'StepStarted'))\n"
    )
    # The client and both workers start at once: the turn is durable and waits in PostgreSQL for them.
    client = subprocess.Popen(
        [sys.executable, "-c", script, hub, services.database_url, services.redis_url],
        env={**os.environ, **base, **receiver.env("client")}, cwd=TESTS_DIR, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    # The API beside worker B, sharing its metrics directory (as on one host).
    api_port = _free_port()
    api_env = {**os.environ, **base, "DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url,
               "TASKHUB": hub, "DURABLE_AGENTS_API_AUTH": "disabled",
               "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}  # fmt: skip
    api = subprocess.Popen(
        [sys.executable, "-m", "durable_agents", "api", "--port", str(api_port), "--log-level", "warning"],
        env=api_env, cwd=TESTS_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(WorkerProcess.start, (orchestrator, runner)))
        out, err = client.communicate(timeout=120)
        assert client.returncode == 0, err
        correlation_id, steps = out.split()
        import durable_agents.ids as ids

        yield Run(
            receiver, hub, ids.agent_turn_instance_id(correlation_id), int(steps), metrics_port, api_port,
        )  # fmt: skip
    finally:
        client.kill()
        api.terminate()
        control.reset()
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(WorkerProcess.stop, (orchestrator, runner)))
        api.wait(timeout=10)
        receiver.stop()


def _spans_of_turn(run: Run) -> list[ReceivedSpan]:
    """Every span of the turn's trace, once worker B has exported the turn's last model call."""

    def last_chat_received() -> list[ReceivedSpan] | None:
        chats = [s for s in run.receiver.spans if s.name == "chat test-model"]
        return run.receiver.spans if len(chats) >= 2 else None

    spans = wait_until(last_chat_received, timeout=20, message="the spans of both model calls")
    root = next(s for s in spans if s.name == "invoke_agent ToolUser")
    return [s for s in spans if s.trace_id == root.trace_id]


def test_one_trace_runs_from_the_client_through_both_workers(traced_run: Run) -> None:
    spans = _spans_of_turn(traced_run)
    by_id = {s.span_id: s for s in spans}

    def parent(span: ReceivedSpan) -> ReceivedSpan:
        return by_id[span.parent_id]

    root = next(s for s in spans if s.name == "invoke_agent ToolUser")
    assert root.service == "client" and root.parent_id == ""
    assert root.attributes["gen_ai.operation.name"] == "invoke_agent"
    # The client started the turn: its steps hang under the client's span.
    turn_steps = [s for s in spans if s.name == f"step {AGENT_TURN}"]
    assert turn_steps and {s.service for s in turn_steps} == {"worker-a"}
    assert all(parent(step) is root for step in turn_steps)

    chats = [s for s in spans if s.name == "chat test-model"]
    assert len(chats) == 2 and {s.service for s in chats} == {"worker-b"}
    for chat in chats:
        assert parent(chat).name == f"activity {MODEL_CALL}" and parent(chat).service == "worker-b"
        assert parent(parent(chat)) in turn_steps  # the step that scheduled the model call, in worker A
        assert chat.attributes["gen_ai.operation.name"] == "chat"
        assert chat.attributes["gen_ai.request.model"] == "test-model"
        assert chat.attributes["gen_ai.usage.input_tokens"] > 0
        assert chat.attributes["gen_ai.usage.output_tokens"] > 0
        assert chat.attributes["gen_ai.agent.name"] == "ToolUser"

    tools = {s.attributes["gen_ai.tool.name"]: s for s in spans if s.name.startswith("execute_tool ")}
    assert set(tools) == {"weather", "book_flight"}
    assert parent(tools["weather"]).name == f"activity {TOOL_CALL}"
    assert parent(tools["book_flight"]).name == "activity tool.book_flight"
    # Both tools were scheduled by one step of the turn (a fan-out), and ran in worker B.
    assert parent(parent(tools["weather"])) is parent(parent(tools["book_flight"]))
    assert parent(parent(tools["weather"])) in turn_steps
    assert {tools["weather"].service, tools["book_flight"].service} == {"worker-b"}


def test_client_calls_that_leave_work_for_an_instance_have_spans(traced_run: Run) -> None:
    client_spans = {s.name: s for s in traced_run.receiver.spans if s.service == "client"}
    nudge, terminate = client_spans["raise_event nudge"], client_spans["terminate_orchestration"]
    assert nudge.attributes["durable.instance_id"] == terminate.attributes["durable.instance_id"] == traced_run.turn_id
    assert terminate.attributes["durable.taskhub"] == traced_run.hub
    assert nudge.status == 2 and terminate.status == 0  # the event was refused; terminating did nothing


def test_replayed_steps_make_no_spans(traced_run: Run) -> None:
    spans = _spans_of_turn(traced_run)
    turn_steps = [s for s in spans if s.name == f"step {AGENT_TURN}"]
    # Worker A kept no executor: every step after the first replayed the turn's history, without spans.
    assert traced_run.turn_steps >= 3
    assert len(turn_steps) == traced_run.turn_steps
    assert len({s.attributes["durable.history_length"] for s in turn_steps}) == traced_run.turn_steps


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _scrape_when_up(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
    try:
        return _scrape(url)
    except OSError:  # still starting
        return None


def test_metrics_of_a_prefork_worker_and_of_the_api(traced_run: Run) -> None:
    worker = _scrape(f"http://127.0.0.1:{traced_run.metrics_port}/metrics")
    completed = (("activity", MODEL_CALL), ("outcome", "completed"))
    assert worker[("durable_agents_activities_total", completed)] == 2  # summed over the pool's processes
    assert (
        worker[("durable_agents_activities_total", (("activity", "tool.book_flight"), ("outcome", "completed")))] == 1
    )
    tokens = (("agent", "ToolUser"), ("model", "test-model"), ("type", "output"))
    assert worker[("durable_agents_model_tokens_total", tokens)] > 0
    assert worker[("durable_agents_activity_seconds_count", (("activity", MODEL_CALL),))] == 2
    assert worker[("durable_agents_instances", (("status", "COMPLETED"),))] >= 1
    # Every queue of the hub has its depth, the one an agent names (GpuWriter: queue="gpu") too.
    depths = {labels[0][1] for name, labels in worker if name == "durable_agents_queue_depth"}
    roles = {f"durable_agents.{traced_run.hub}.{role}" for role in ("orchestrator", "activities", "agents")}
    assert depths == {*roles, f"durable_agents.{traced_run.hub}.gpu"}

    # The API beside the worker, sharing its metrics directory: the same counters, and the task hub's levels.
    served = wait_until(lambda: _scrape_when_up(f"http://127.0.0.1:{traced_run.api_port}/metrics"),
                        timeout=30, message="the API's /metrics")  # fmt: skip
    assert served[("durable_agents_activities_total", completed)] == 2
    assert served[("durable_agents_instances", (("status", "COMPLETED"),))] >= 1
    queues = {labels[0][1] for name, labels in served if name == "durable_agents_queue_depth"}
    assert queues == roles  # an API without the app knows the three roles' queues only


def test_an_exporter_it_does_not_know_is_refused_in_one_line(services: Services) -> None:
    env = {"DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url, "OTEL_TRACES_EXPORTER": "zipkin"}
    refused = run_cli("worker", "workflows:app", env=env)
    assert refused.returncode == 1
    assert refused.stderr.strip() == "error: OTEL_TRACES_EXPORTER names zipkin; use otlp or console (or none)"


MULTIPROC_OWNER = r"""
import os, sys
from durable_agents.telemetry.exposition import prepare_multiprocess
directory = prepare_multiprocess()
if os.fork() == 0:
    sys.exit(0)  # a child that runs exit handlers: the directory is not its to remove
os.wait()
print(directory, os.path.isdir(directory), flush=True)
"""


def test_a_metrics_directory_the_worker_made_is_removed_when_it_exits_not_when_a_child_does() -> None:
    env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    done = subprocess.run([sys.executable, "-c", MULTIPROC_OWNER], env={**env, "PYTHONPATH": python_path()},
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    directory, kept_after_child = done.stdout.split()
    assert kept_after_child == "True"
    assert not Path(directory).exists()
