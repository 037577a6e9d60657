"""An agent with a queue of its own: its model and tool calls run only on workers consuming that queue."""

from __future__ import annotations

import socket
import sys
from typing import Any

import pytest

from durable_agents import DurableAgentClient, DurableClient
from durable_agents.agents.agent import Agent
from durable_agents.diagnosis import Explanation, Reason
from durable_agents.errors import InstanceNotFoundError
from durable_agents.ids import agent_turn_instance_id
from durable_agents.testing import TestModelServer

from conftest import WorkerProcess, wait_until

pytestmark = pytest.mark.usefixtures("fresh_model")

GPU_MODEL_CALL = "durable_agents.agent_model_call:gpu"


def test_an_agents_calls_wait_for_and_run_on_a_worker_of_its_queue(
    agents_client: DurableClient,
    agents_worker: WorkerProcess,
    model_server: TestModelServer,
    start_worker: Any,
) -> None:
    control = model_server.control
    control.add_rule(
        match={"last_user_contains": "Where are you", "last_message_role": "user"},
        reply={"tool_calls": [{"name": "where_am_i", "arguments": {"place": "the GPU host"}}]},
    )
    control.add_rule(match={"last_message_role": "tool"}, reply={"content": "Written on the GPU host."})
    control.add_rule(match={"last_user_contains": "joke"}, reply={"content": "A joke from the agents queue."})
    agents = DurableAgentClient(agents_client)

    correlation_id = agents.get_agent("GpuWriter").run_sync("Where are you?", wait_for_response=False)
    turn = agent_turn_instance_id(correlation_id)
    # The shared worker consumes orchestrator, activities and agents, not gpu: the model call waits, and
    # `explain` names the agent's queue.

    def unserved() -> Explanation | None:
        try:
            explained = agents_client.explain(turn)
        except InstanceNotFoundError:  # the session has not started the turn yet
            return None
        return explained if explained.reason == Reason.NO_WORKER else None

    why = wait_until(unserved, message="the model call to wait for a gpu worker")
    assert [p.name for p in why.pending] == [GPU_MODEL_CALL]
    assert "agents on queue 'gpu'" in why.message and "--queues gpu" in why.message, why.message
    # Agents without a queue of their own still run on the agents queue meanwhile.
    assert agents.get_agent("Joker").run_sync("Tell a joke").text == "A joke from the agents queue."

    command = [
        sys.executable, "-m", "durable_agents", "worker", "agents_app:app", "--queues", "gpu",
        "--pool", "threads", "--concurrency", "1", "--hostname", f"gpu-{agents_worker.name}@%h",
    ]  # fmt: skip
    gpu = start_worker(
        agents_worker.taskhub,
        module="agents_app:app",
        command=command,
        extra_env={"MODEL_SERVER_URL": model_server.url},
    )
    response = agents.get_agent("GpuWriter").wait(correlation_id, timeout=30)
    assert response.text == "Written on the GPU host."
    # The tool call ran in the gpu worker's process, and so did both model calls, never on the shared worker.
    tool_results = [m["content"] for m in response.messages if m["role"] == "tool"]
    assert tool_results == [f"the GPU host from pid {gpu.process.pid}"]
    log = gpu.log_path.read_text()
    # Each call's message went to the gpu queue, and so did any copy the sweeper sent again while it waited
    # (a copy finds the call done and does not ask the model twice).
    assert log.count(f"Task activity:{GPU_MODEL_CALL}[") >= 2 * 2  # received and succeeded, two rounds
    assert "Task activity:durable_agents.agent_tool_call:gpu[" in log
    assert ":gpu[" not in agents_worker.log_path.read_text()
    asked = [r["body"] for r in control.requests() if r["body"]["messages"][0]["content"].startswith("You write")]
    assert len(asked) == 2
    [record] = [w for w in agents_client.list_workers() if w.pid == gpu.process.pid]
    assert record.queues == (f"durable_agents.{agents_worker.taskhub}.gpu",)
    assert record.agents == ("GpuWriter",)
    assert record.node_name == f"gpu-{agents_worker.name}@{socket.gethostname()}"


def test_an_agents_queue_must_be_a_short_queue_name() -> None:
    with pytest.raises(ValueError, match="queue 'gpu.fast' is not a short queue name"):
        Agent(name="Bad", instructions="", chat_client=None, queue="gpu.fast")  # type: ignore[arg-type]
