"""A step's writes sent together: new work items keep their own ids and names; nothing outlives the instance."""

from __future__ import annotations

from sqlalchemy import select

from durable_agents import OrchestrationStatus
from durable_agents.models import WorkItem
from durable_agents.store.db import transaction
from durable_agents.tasks.drain import on_drain_message
from durable_agents.tasks.eager import on_activity_message
from durable_agents.tasks.step import run_one_step

from conftest import Services, make_client, new_taskhub


def test_each_new_work_item_is_dispatched_under_its_own_id_and_activity(services: Services) -> None:
    width = 40
    client = make_client(services, new_taskhub("writes"))  # no worker: the test runs the steps
    instance_id = client.schedule_new_orchestration("mixed_fan_out", input=width)
    fanned = run_one_step(client.app, client.taskhub, instance_id)

    with transaction(services.database_url) as session:
        stored = {item.id: item for item in session.scalars(select(WorkItem).where(WorkItem.taskhub == client.taskhub))}
    assert sorted(stored) == sorted(item for item, _ in fanned.activities)
    for item, name in fanned.activities:
        assert stored[item].name == name == ("square" if stored[item].input % 2 else "add_one")

    assert on_drain_message(client.app, client.taskhub, [item for item, _ in fanned.activities], 0, 1) == width
    run_one_step(client.app, client.taskhub, instance_id)
    state = client.get_orchestration_state(instance_id)
    assert state.runtime_status == OrchestrationStatus.COMPLETED
    assert state.output == sum(i * i if i % 2 else i + 1 for i in range(width))


def test_an_instance_that_ends_in_a_step_leaves_no_work_behind(services: Services) -> None:
    client = make_client(services, new_taskhub("ends"))
    instance_id = client.schedule_new_orchestration("schedules_and_returns")
    dispatch = run_one_step(client.app, client.taskhub, instance_id)

    assert dispatch.activities == [] and dispatch.claimed is None
    assert client.get_orchestration_state(instance_id).output == "done"
    with transaction(services.database_url) as session:
        assert session.scalars(select(WorkItem).where(WorkItem.instance_id == instance_id)).all() == []


def test_continue_as_new_runs_the_new_executions_first_step_in_the_same_step(services: Services) -> None:
    client = make_client(services, new_taskhub("can"))
    instance_id = client.schedule_new_orchestration("counter", input={"count": 0, "target": 3})
    ((item, _),) = run_one_step(client.app, client.taskhub, instance_id).activities
    on_activity_message(client.app, client.taskhub, item, False)  # records the outcome, wakes nobody

    dispatch = run_one_step(client.app, client.taskhub, instance_id)

    # The first execution ended and the second one already ran up to its own activity: no wake-up needed.
    assert dispatch.steps == [] and len(dispatch.activities) == 1
    state = client.get_orchestration_state(instance_id)
    assert state.runtime_status == OrchestrationStatus.RUNNING
    assert state.custom_status == {"count": 2}
    assert [event["type"] for event in client.get_history(instance_id)][:2] == ["StepStarted", "ExecutionStarted"]
