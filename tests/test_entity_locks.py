"""Entity locks taken and released in the holder's own step when the entity is idle, by message when it is not.

The test runs every step itself (no worker), so it sees which steps each lock and release needed.
"""

from __future__ import annotations

from typing import Any

from durable_agents import EntityId, OrchestrationStatus
from durable_agents.store import entity_locks
from durable_agents.store.db import transaction
from durable_agents.tasks.step import run_one_step

from conftest import Services, make_client, new_taskhub


def types(client: Any, instance_id: str) -> list[str]:
    return [event["type"] for event in client.get_history(instance_id) if event["type"] != "StepStarted"]


def test_an_idle_entity_is_locked_in_the_step_that_asks_and_a_busy_one_by_message_in_turn(
    services: Services,
) -> None:
    client = make_client(services, new_taskhub("locks"))
    app, hub = client.app, client.taskhub
    entity = EntityId("counter", "k")
    first = client.schedule_new_orchestration("hold_lock", input=str(entity))
    second = client.schedule_new_orchestration("hold_lock", input=str(entity))

    # Idle: the first holds the lock when its first step ends, and the entity was never woken.
    assert run_one_step(app, hub, first).steps == []
    assert types(client, first) == ["ExecutionStarted", "EntityLockRequested", "TaskCompleted"]
    assert client.get_entity(entity).locked_by == first

    # Busy: the second's request goes to the entity, which holds it back while the first holds the lock.
    assert run_one_step(app, hub, second).steps == [entity.instance_id]
    assert types(client, second) == ["ExecutionStarted", "EntityLockRequested"]
    run_one_step(app, hub, entity.instance_id)
    assert client.get_entity(entity).waiting == 1

    # Something waits: the first's release is a message, whose step hands the lock to the second.
    client.raise_orchestration_event(first, "go")
    assert entity.instance_id in run_one_step(app, hub, first).steps
    assert run_one_step(app, hub, entity.instance_id).steps == [second]
    run_one_step(app, hub, second)
    assert client.get_entity(entity).locked_by == second

    # Nothing waits: the second's release is direct.
    client.raise_orchestration_event(second, "go")
    assert run_one_step(app, hub, second).steps == []
    state = client.get_entity(entity)
    assert (state.locked_by, state.waiting) == (None, 0)
    recorded = [(op.kind, op.caller) for op in reversed(state.recent_operations)]
    assert recorded == [("lock", first), ("unlock", first), ("lock", second), ("unlock", second)]
    for instance_id in (first, second):
        done = client.get_orchestration_state(instance_id)
        assert (done.runtime_status, done.output) == (OrchestrationStatus.COMPLETED, "released")


def test_a_waiting_message_keeps_the_lock_from_being_taken_ahead_of_it(services: Services) -> None:
    client = make_client(services, new_taskhub("fifo"))
    entity = EntityId("counter", "fifo")
    client.signal_entity(entity, "add", 1)  # in the inbox, its step not yet run

    with transaction(services.database_url) as session:
        assert not entity_locks.lock_now(session, client.taskhub, [entity], "lock-1", "someone")

    run_one_step(client.app, client.taskhub, entity.instance_id)
    with transaction(services.database_url) as session:
        assert entity_locks.lock_now(session, client.taskhub, [entity], "lock-1", "someone")
    assert client.get_entity(entity).state == 1


def test_a_lock_over_several_entities_is_all_or_nothing(services: Services) -> None:
    client = make_client(services, new_taskhub("several"))
    a, b = EntityId("Account", "a"), EntityId("Account", "b")
    with transaction(services.database_url) as session:
        assert entity_locks.lock_now(session, client.taskhub, [b], "held", "other")

    with transaction(services.database_url) as session:
        assert not entity_locks.lock_now(session, client.taskhub, [a, b], "both", "me")

    assert client.get_entity(a).locked_by is None  # taken, then given back when b was busy
    assert client.get_entity(b).locked_by == "other"
