"""Crash and broker-loss recovery: SIGKILL a worker mid-activity; flush every message from Redis."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import redis

from durable_agents import OrchestrationStatus
from durable_agents.tasks.dispatch import publish
from durable_agents.tasks.drain import on_drain_message
from durable_agents.tasks.step import run_one_step

from conftest import Services, make_client, new_taskhub, wait_until


def test_sigkill_mid_activity_another_worker_finishes_with_one_effect(
    services: Services, effects_dir: Path, start_worker: Any
) -> None:
    hub = new_taskhub("crash")
    first = start_worker(hub, lease_seconds=1.0)
    client = make_client(services, hub)
    label = uuid.uuid4().hex
    instance_id = client.schedule_new_orchestration("crash_target", input=label)
    runs = effects_dir / f"runs-{label}"
    wait_until(lambda: runs.exists() and runs.read_text().count("\n") == 1, message="the activity to start")

    first.kill()  # SIGKILL while the activity is inside the user's function
    (effects_dir / f"gate-{label}").touch()
    start_worker(hub, lease_seconds=1.0)

    state = client.wait_for_orchestration_completion(instance_id, timeout=60)
    assert state.runtime_status == OrchestrationStatus.COMPLETED
    run_pids = runs.read_text().split()
    assert len(run_pids) == 2 and run_pids[0] != run_pids[1]  # ran on the killed worker, then on the new one
    effects = (effects_dir / f"effects-{label}").read_text().splitlines()
    assert effects == [state.output]  # one effect, under the stable idempotency key
    assert state.output == f"{hub}/{instance_id}/" + state.output.split("/")[2] + "/1"


def test_sigkill_mid_fan_out_another_worker_finishes_it_with_one_effect_each(
    services: Services, effects_dir: Path, start_worker: Any
) -> None:
    hub = new_taskhub("crashfan")
    # 8 slots: the fan-out of 4 gets a drainer each. The sweeper sends pending work again only after a
    # minute here, so the four can only run at once through the drainers.
    patient = {"DURABLE_AGENTS_REDISPATCH_AFTER": "60"}
    first = start_worker(hub, lease_seconds=1.0, extra_env=patient)
    client = make_client(services, hub)
    label = uuid.uuid4().hex
    instance_id = client.schedule_new_orchestration("crash_fan_out", input=label)
    labels = [f"{label}-{i}" for i in range(4)]
    runs = [effects_dir / f"runs-{each}" for each in labels]
    # All four at once: the drainers keep the fan-out's parallelism (one drainer for all would run one).
    wait_until(lambda: all(r.exists() for r in runs), message="all four activities to start together")

    first.kill()  # SIGKILL with every drainer inside an activity: the chord is lost with them
    for each in labels:
        (effects_dir / f"gate-{each}").touch()
    start_worker(hub, lease_seconds=1.0, extra_env=patient)  # takes over the expired leases at once

    state = client.wait_for_orchestration_completion(instance_id, timeout=60)
    assert state.runtime_status == OrchestrationStatus.COMPLETED
    for each, run, key in zip(labels, runs, state.output, strict=True):
        assert len(set(run.read_text().split())) == 2  # ran on the killed worker, then on the new one
        assert (effects_dir / f"effects-{each}").read_text().splitlines() == [key]  # one effect, its own key


def test_a_drainer_runs_the_shares_of_drainers_whose_messages_were_lost(services: Services) -> None:
    client = make_client(services, new_taskhub("drain"))  # no worker: this test runs the one drainer
    instance_id = client.schedule_new_orchestration("fan_out", input=10)
    fanned = run_one_step(client.app, client.taskhub, instance_id)
    item_ids = [item for item, _ in fanned.activities]
    assert len(item_ids) == 10 and fanned.chord_instance == instance_id

    # Drainer 0 of 3 runs its own share and then the two shares whose drainers never came.
    assert on_drain_message(client.app, client.taskhub, item_ids, 0, 3) == 10
    assert on_drain_message(client.app, client.taskhub, item_ids, 2, 3) == 0  # a late one finds all done
    run_one_step(client.app, client.taskhub, instance_id)
    state = client.get_orchestration_state(instance_id)
    assert state.runtime_status == OrchestrationStatus.COMPLETED
    assert state.output == sum(i * i for i in range(10))


def test_a_fan_out_no_live_worker_serves_yet_gets_a_message_per_activity(services: Services) -> None:
    import json

    client = make_client(services, new_taskhub("nodrain"))  # no worker: the registry knows no slots
    instance_id = client.schedule_new_orchestration("fan_out", input=6)
    publish(client.app, run_one_step(client.app, client.taskhub, instance_id))

    # Workers that start later can run all six at once: drainers sized by no slots would forbid that.
    broker = redis.Redis.from_url(services.redis_url)
    queued = [json.loads(m)["headers"]["task"] for m in broker.lrange(client.settings.queue("activities"), 0, -1)]
    assert queued == ["durable_agents.activity"] * 6


def test_losing_every_broker_message_loses_no_work(services: Services, start_worker: Any) -> None:
    hub = new_taskhub("flush")
    # Two slots hold at most four messages (two running, two prefetched): the rest wait in the broker.
    worker = start_worker(hub, concurrency=2)
    client = make_client(services, hub)
    # Forty chains of ten: far more work than the worker can finish between the first progress and the pause,
    # on a loaded machine too (with twenty, a busy one saw twelve finish in between).
    instance_ids = [client.schedule_new_orchestration("chain", input=i * 100) for i in range(40)]
    wait_until(lambda: len(client.get_history(instance_ids[0])) > 3, message="instances to make progress")
    worker.pause()  # freeze mid-flight so the broker holds messages we are about to destroy
    broker = redis.Redis.from_url(services.redis_url)
    queued = sum(broker.llen(client.settings.queue(role)) for role in ("orchestrator", "activities"))
    unfinished = [i for i in instance_ids if not client.get_orchestration_state(i).runtime_status.is_terminal]
    assert queued > 0 and len(unfinished) >= 10
    broker.flushdb()  # every queued message, binding and chord counter is gone
    worker.resume()
    for n, instance_id in enumerate(instance_ids):
        state = client.wait_for_orchestration_completion(instance_id, timeout=90)
        assert state.runtime_status == OrchestrationStatus.COMPLETED
        assert state.output == n * 100 + 10


def test_a_running_activity_keeps_its_lease_for_as_long_as_it_runs(
    services: Services, effects_dir: Path, start_worker: Any
) -> None:
    from sqlalchemy import select

    from durable_agents.models import WorkItem
    from durable_agents.store.db import transaction

    hub = new_taskhub("lease")
    start_worker(hub, lease_seconds=1.0)  # its sweeper looks for expired leases five times a second
    client = make_client(services, hub)
    label = uuid.uuid4().hex
    instance_id = client.schedule_new_orchestration("crash_target", input=label)
    runs = effects_dir / f"runs-{label}"
    wait_until(lambda: runs.exists(), message="the activity to start")

    def lease_expiry() -> Any:
        with transaction(services.database_url) as session:
            return session.scalar(select(WorkItem.lease_expires_at).where(WorkItem.instance_id == instance_id))

    first = lease_expiry()
    # Renewed again and again: by now the first lease has been over for two seconds.
    wait_until(lambda: (lease_expiry() - first).total_seconds() > 2, message="the lease to be renewed past 2 s")
    (effects_dir / f"gate-{label}").touch()

    state = client.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state.runtime_status == OrchestrationStatus.COMPLETED
    assert runs.read_text().count("\n") == 1  # never taken over by the sweeper: it ran once


def test_a_late_duplicate_execution_records_one_completion(
    services: Services, effects_dir: Path, worker: Any, client: Any
) -> None:
    from sqlalchemy import func, update

    from durable_agents.models import WorkItem
    from durable_agents.store.db import transaction

    label = uuid.uuid4().hex
    instance_id = client.schedule_new_orchestration("crash_target", input=label)
    runs = effects_dir / f"runs-{label}"
    wait_until(lambda: runs.exists() and runs.read_text().count("\n") == 1, message="the first execution")
    with transaction(services.database_url) as session:  # the lease is lost, as after a long network stall
        session.execute(
            update(WorkItem)
            .where(WorkItem.instance_id == instance_id)
            .values(lease_owner="a-worker-that-stalled", lease_expires_at=func.now() - timedelta(seconds=1))
        )
    wait_until(lambda: runs.read_text().count("\n") == 2, message="the sweeper to start a second execution")
    (effects_dir / f"gate-{label}").touch()  # both executions finish and both try to record a result

    state = client.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state.runtime_status == OrchestrationStatus.COMPLETED
    assert sum(1 for e in client.get_history(instance_id) if e["type"] == "TaskCompleted") == 1
    assert (effects_dir / f"effects-{label}").read_text().splitlines() == [state.output]


def test_pickled_messages_are_refused(services: Services, worker: Any, client: Any) -> None:
    from kombu import Connection

    with Connection(services.redis_url) as connection:
        connection.Producer(serializer="pickle").publish(
            {"args": [client.taskhub, "whatever"]},
            routing_key=client.settings.queue("orchestrator"),
            headers={"task": "durable_agents.orchestrator_step", "id": uuid.uuid4().hex},
        )
    wait_until(
        lambda: b"untrusted content of type pickle" in worker.log_path.read_bytes(),
        message="the worker to refuse the pickled message",
    )


def test_a_start_while_the_broker_is_down_is_kept_and_run_later(services: Services, worker: Any) -> None:
    """The broker is a hint: a client that cannot reach it still commits the instance, and the
    worker's sweeper dispatches it (DURABLE_AGENTS_REDISPATCH_AFTER is 2 s for test workers)."""
    from durable_agents import DurableClient

    import workflows

    dead_broker = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    cut_off = DurableClient(
        workflows.app, taskhub=worker.taskhub, database_url=services.database_url, redis_url=dead_broker
    )
    instance_id = cut_off.schedule_new_orchestration("plain_function", input="no broker")

    state = make_client(services, worker.taskhub).wait_for_orchestration_completion(instance_id, timeout=60)
    assert state.runtime_status == OrchestrationStatus.COMPLETED
    assert state.output == {"echo": "no broker"}
