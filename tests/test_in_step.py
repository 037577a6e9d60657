"""Work that runs inside a step's own transaction: in-step activities, and a child's first step."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import delete, event, select

from durable_agents import OrchestrationStatus
from durable_agents.models import AgentSessionRow, InboxRow, Instance, WorkItem
from durable_agents.steps.in_step import IN_STEP_ROUNDS
from durable_agents.store.db import get_engine, transaction
from durable_agents.tasks.eager import on_activity_message
from durable_agents.tasks.step import run_one_step

from conftest import Services, make_client, new_taskhub


def notes(services: Services, taskhub: str) -> set[str]:
    with transaction(services.database_url) as session:
        rows = session.scalars(select(AgentSessionRow.session_key).where(AgentSessionRow.taskhub == taskhub))
        return set(rows)


@contextmanager
def savepoints(database_url: str) -> Iterator[list[str]]:
    """The SAVEPOINT statements this process sends meanwhile."""
    sent: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("SAVEPOINT"):
            sent.append(statement)

    engine = get_engine(database_url)
    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", seen)


def test_in_step_activities_commit_with_the_step_and_a_failing_one_leaves_no_writes(services: Services) -> None:
    client = make_client(services, new_taskhub("instep"))  # no worker: the test runs the steps
    instance_id = client.schedule_new_orchestration("notes_then_activity", input=client.taskhub)

    with savepoints(services.database_url) as sent:
        ((item, name),) = run_one_step(client.app, client.taskhub, instance_id).activities

    # The failure undid the step run without savepoints; run again, each activity had one of its own.
    assert len(sent) == 2

    # One step ran both in-step activities and got as far as the ordinary activity after them.
    assert name == "add_one"
    assert notes(services, client.taskhub) == {"kept"}  # the failed one's row was rolled back with it
    types = [event["type"] for event in client.get_history(instance_id)]
    in_step = ["TaskScheduled", "TaskCompleted", "TaskScheduled", "TaskFailed"]
    assert types == ["StepStarted", "ExecutionStarted", *in_step, "TaskScheduled"]
    on_activity_message(client.app, client.taskhub, item, False)
    run_one_step(client.app, client.taskhub, instance_id)
    state = client.get_orchestration_state(instance_id)
    assert state.runtime_status == OrchestrationStatus.COMPLETED
    assert state.output == ["kept", "note undone refused", 2]


def test_in_step_rounds_are_bounded_and_the_rest_run_as_work_items(services: Services) -> None:
    client = make_client(services, new_taskhub("rounds"))
    count = IN_STEP_ROUNDS + 2
    instance_id = client.schedule_new_orchestration("many_notes", input=[client.taskhub, count])

    with savepoints(services.database_url) as sent:
        ((item, name),) = run_one_step(client.app, client.taskhub, instance_id).activities

    assert sent == []  # none failed: the step ran them without a savepoint each
    assert name == "write_note"
    assert notes(services, client.taskhub) == {f"n{i}" for i in range(IN_STEP_ROUNDS)}
    # As a work item it runs in a transaction of its own, then the next step runs the last one in-step.
    on_activity_message(client.app, client.taskhub, item, False)
    assert run_one_step(client.app, client.taskhub, instance_id).activities == []
    state = client.get_orchestration_state(instance_id)
    assert state.runtime_status == OrchestrationStatus.COMPLETED
    assert state.output == [f"n{i}" for i in range(count)]
    assert notes(services, client.taskhub) == set(state.output)


def test_a_new_childs_first_step_runs_in_its_parents_step(services: Services) -> None:
    client = make_client(services, new_taskhub("child"))
    instance_id = client.schedule_new_orchestration("parent")

    dispatch = run_one_step(client.app, client.taskhub, instance_id)

    # The child already scheduled its activity; nobody needs to wake it.
    ((item, name),) = dispatch.activities
    assert name == "async_double" and dispatch.steps == []
    with transaction(services.database_url) as session:
        child_id = session.scalar(select(WorkItem.instance_id).where(WorkItem.id == item))
    parent_started = client.get_history(instance_id)[0]
    child_started = client.get_history(child_id)[0]
    assert parent_started["type"] == child_started["type"] == "StepStarted"
    assert parent_started["timestamp"] == child_started["timestamp"]  # the same transaction's clock
    assert client.get_orchestration_state(child_id).runtime_status == OrchestrationStatus.RUNNING


def test_a_child_whose_parent_was_purged_still_completes(services: Services) -> None:
    client = make_client(services, new_taskhub("orphan"))
    instance_id = client.schedule_new_orchestration("parent")
    ((item, _),) = run_one_step(client.app, client.taskhub, instance_id).activities
    with transaction(services.database_url) as session:
        child_id = session.scalar(select(WorkItem.instance_id).where(WorkItem.id == item))
        session.execute(delete(Instance).where(Instance.taskhub == client.taskhub, Instance.instance_id == instance_id))

    on_activity_message(client.app, client.taskhub, item, False)
    dispatch = run_one_step(client.app, client.taskhub, child_id)

    assert client.get_orchestration_state(child_id).runtime_status == OrchestrationStatus.COMPLETED
    assert client.get_orchestration_state(instance_id) is None
    assert dispatch.steps == [instance_id]  # a wake-up for nobody, which its step ignores
    with transaction(services.database_url) as session:
        assert session.scalars(select(InboxRow).where(InboxRow.instance_id == instance_id)).all() == []
