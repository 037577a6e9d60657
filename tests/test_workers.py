"""Workers register what they serve and heartbeat; `explain` says why an instance is not progressing."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from durable_agents import DurableClient
from durable_agents.diagnosis import Reason
from durable_agents.models import WorkerRow
from durable_agents.store.db import transaction

from conftest import (
    Services,
    WorkerProcess,
    client_for,
    make_client,
    new_taskhub,
    unconfigured_environment,
    wait_until,
)

README = Path(__file__).resolve().parent.parent / "README.md"
#: Heartbeats fast enough that liveness changes within a test.
FAST_HEARTBEATS = {"DURABLE_AGENTS_HEARTBEAT_INTERVAL": "0.2", "DURABLE_AGENTS_WORKER_TIMEOUT": "1.5"}


@pytest.fixture(scope="module")
def hub_worker(services: Services, effects_dir: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(services, effects_dir, new_taskhub("why"), extra_env=FAST_HEARTBEATS).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def client(services: Services, hub_worker: WorkerProcess) -> DurableClient:
    return make_client(services, hub_worker.taskhub)  # type: ignore[no-any-return]


def orchestrator_only_command(process_name: str) -> list[str]:
    return [
        sys.executable, "-m", "durable_agents", "worker", "workflows:app", "--queues", "orchestrator",
        "--pool", "threads", "--concurrency", "4", "--hostname", f"{process_name}@%h",
    ]  # fmt: skip


def test_a_worker_registers_what_it_serves_heartbeats_and_leaves_on_stop(services: Services, start_worker: Any) -> None:
    hub = new_taskhub("reg")
    process = start_worker(hub, extra_env=FAST_HEARTBEATS)
    client = make_client(services, hub)

    [worker] = client.list_workers()
    assert worker.node_name == f"{process.name}@{socket.gethostname()}"
    assert worker.pid == process.process.pid and worker.live and worker.runs_sweeper
    assert set(worker.queues) == {f"durable_agents.{hub}.{role}" for role in ("orchestrator", "activities", "agents")}
    assert {"sequence", "approval", "long_timer"} <= set(worker.orchestrations)
    assert {"hello", "add_one", "async_double"} <= set(worker.activities)
    assert worker.agents == ()
    assert worker.concurrency == process.concurrency  # its slots, which size fan-outs' drainers
    first_beat = worker.last_heartbeat_at
    wait_until(lambda: client.list_workers()[0].last_heartbeat_at > first_beat, message="a heartbeat")

    process.stop()
    assert client.list_workers(include_dead=True) == []  # a clean stop removes the row at once


def test_a_killed_worker_stops_being_live_and_long_dead_rows_are_forgotten(
    services: Services, start_worker: Any
) -> None:
    hub = new_taskhub("dead")
    process = start_worker(hub, extra_env=FAST_HEARTBEATS)
    client = make_client(services, hub)
    long_ago = datetime.now(UTC) - timedelta(hours=3)
    with transaction(services.database_url) as session:
        session.add(
            WorkerRow(
                taskhub=hub,
                worker_id="ancient",
                node_name="ancient@gone",
                host="gone",
                pid=1,
                version="0.0.1",
                queues=[],
                orchestrations=["sequence"],
                activities=[],
                agents=[],
                runs_sweeper=True,
                started_at=long_ago,
                heartbeat_at=long_ago,
                expires_at=long_ago + timedelta(seconds=30),
            )
        )
    assert [w.worker_id for w in client.list_workers(include_dead=True)][-1] == "ancient"
    wait_until(
        lambda: "ancient" not in {w.worker_id for w in client.list_workers(include_dead=True)},
        message="the live worker's heartbeat forgetting the long-dead row",
    )

    process.kill()  # SIGKILL: no goodbye, the row expires instead
    wait_until(lambda: client.list_workers() == [], timeout=15, message="the killed worker to stop being live")
    [dead] = client.list_workers(include_dead=True)
    assert not dead.live and dead.node_name.startswith(process.name)


def test_an_orchestration_no_live_worker_serves_is_explained_until_one_starts(
    services: Services, start_worker: Any
) -> None:
    hub = new_taskhub("nobody")
    client = make_client(services, hub)
    instance_id = client.schedule_new_orchestration("chain", input=1)

    why = client.explain(instance_id)
    assert why.reason == Reason.NO_WORKER and why.needs_attention
    assert [(p.kind, p.name, p.served_by) for p in why.pending] == [("step", "chain", ())]
    assert "no live worker of task hub" in why.message and "orchestration 'chain'" in why.message
    assert why.to_json()["reason"] == "no_worker"

    start_worker(hub, extra_env=FAST_HEARTBEATS)
    assert client.wait_for_orchestration_completion(instance_id, timeout=60).output == 11
    finished = client.explain(instance_id)
    assert finished.reason == Reason.FINISHED and not finished.needs_attention


def test_an_activity_whose_queue_no_live_worker_consumes_is_explained(services: Services, start_worker: Any) -> None:
    hub = new_taskhub("noact")
    name = f"{hub}-orch"
    start_worker(hub, extra_env=FAST_HEARTBEATS, command=orchestrator_only_command(name))
    client = make_client(services, hub)
    [worker] = client.list_workers()
    assert "sequence" in worker.orchestrations and worker.activities == ()  # it does not consume their queue

    instance_id = client.schedule_new_orchestration("sequence")
    why = wait_until(
        lambda: (w := client.explain(instance_id)).reason == Reason.NO_WORKER and w, message="the activity to wait"
    )
    [item] = why.pending
    assert (item.kind, item.name, item.status, item.task_id, item.served_by) == ("activity", "hello", "pending", 1, ())
    assert "activity 'hello'" in why.message and f"live workers: {name}@" in why.message


def test_a_waiting_instance_is_explained_with_its_event_name_and_since_when(client: DurableClient) -> None:
    instance_id = client.schedule_new_orchestration("approval", input={"timeout_seconds": 3600})
    why = wait_until(
        lambda: (w := client.explain(instance_id)).reason == Reason.WAITING_FOR_EVENT and w, message="the wait"
    )
    event, timer = why.pending
    started = client.get_history(instance_id)[0]["timestamp"]
    assert (event.kind, event.name) == ("event", "approval_received")
    assert event.since == datetime.fromisoformat(started)
    assert timer.kind == "timer" and timer.fires_at == event.since + timedelta(seconds=3600)
    assert "'approval_received'" in why.message and "a timer fires at" in why.message
    assert not why.needs_attention and why.notes == ()

    # A client without the code still sees the timer, and says what it cannot see.
    bare = DurableClient(taskhub=client.taskhub, database_url=client.settings.database_url)
    blind = bare.explain(instance_id)
    assert blind.reason == Reason.WAITING_FOR_TIMER and "does not have the code" in blind.notes[0]

    client.raise_event(instance_id, "approval_received", data={"ok": True})
    assert client.wait_for_orchestration_completion(instance_id).output["status"] == "approved"


def test_a_timer_waiting_instance_is_explained_with_its_fire_time(client: DurableClient) -> None:
    instance_id = client.schedule_new_orchestration("long_timer")
    why = wait_until(
        lambda: (w := client.explain(instance_id)).reason == Reason.WAITING_FOR_TIMER and w, message="the timer"
    )
    created = next(e for e in client.get_history(instance_id) if e["type"] == "TimerCreated")
    [timer] = why.pending
    assert timer.fires_at == datetime.fromisoformat(created["fire_at"])
    assert timer.fires_at.strftime("%Y-%m-%d %H:%M:%S UTC") in why.message
    client.terminate(instance_id)


def test_sub_orchestrations_and_suspension_are_explained(client: DurableClient) -> None:
    parent = client.schedule_new_orchestration("parent_of_waiters")
    why = wait_until(
        lambda: (
            (w := client.explain(parent)).reason == Reason.WAITING_FOR_SUB_ORCHESTRATION
            and w.child is not None
            and w.child.reason == Reason.WAITING_FOR_EVENT
            and w
        ),
        message="the parent waiting on its children",
    )
    assert [p.kind for p in why.pending] == ["sub_orchestration", "sub_orchestration"]
    assert why.pending[0].status == "RUNNING" and why.child is not None
    assert why.child.pending[0].name == "never" and "'never'" in why.message

    child_id = why.pending[1].instance_id
    assert child_id is not None
    client.suspend(child_id)
    wait_until(lambda: client.explain(child_id).reason == Reason.SUSPENDED, message="the suspension")
    client.terminate(parent)


def test_workers_and_explanations_on_sqlite(sqlite_services: Services, sqlite_worker: WorkerProcess) -> None:
    client = make_client(sqlite_services, sqlite_worker.taskhub)
    [worker] = client.list_workers()
    assert worker.node_name.startswith(sqlite_worker.name) and "long_waiter" in worker.orchestrations

    instance_id = client.schedule_new_orchestration("long_waiter")
    why = wait_until(
        lambda: (w := client.explain(instance_id)).reason == Reason.WAITING_FOR_EVENT and w, message="the wait"
    )
    assert [(p.kind, p.name) for p in why.pending] == [("event", "never")]
    client.terminate(instance_id)


def test_an_agent_no_live_worker_hosts_is_explained(
    services: Services, effects_dir: Path, model_server: Any, start_worker: Any
) -> None:
    hub = new_taskhub("noagent")
    orchestrator_only = [*orchestrator_only_command(f"{hub}-orch")]
    orchestrator_only[orchestrator_only.index("workflows:app")] = "agents_app:app"
    env = {**FAST_HEARTBEATS, "MODEL_SERVER_URL": model_server.url}
    start_worker(hub, extra_env=env, module="agents_app:app", command=orchestrator_only)
    client = client_for(services, hub)
    instance_id = client.schedule_new_orchestration("writer_orchestration")

    why = wait_until(
        lambda: (w := client.explain(instance_id)).reason == Reason.NO_WORKER and w, message="the agent call to wait"
    )
    [call] = why.pending
    assert (call.kind, call.name, call.served_by) == ("agent", "WriterAgent", ())
    assert call.instance_id is not None and call.instance_id.startswith("@turn:")
    assert "agent 'WriterAgent'" in why.message and "agents queue" in why.message
    client.terminate(instance_id)


def test_the_readme_example_runs_embedded(tmp_path: Path) -> None:
    section = README.read_text().split("## Workers and diagnosis", 1)[1]
    script = tmp_path / "why.py"
    script.write_text(re.findall(r"```python\n(.*?)```", section, re.S)[0])
    result = subprocess.run(
        [sys.executable, script.name], cwd=tmp_path, env=unconfigured_environment(), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    listed, waiting, finished = result.stdout.strip().splitlines()
    assert listed.startswith("embedded-") and "('approval',)" in listed
    assert waiting.startswith("waiting_for_event - it waits for external event 'approval_received' since ")
    assert finished == "the instance is COMPLETED: there is nothing left to do"
