"""Bad input gets a clear error at the call site and leaves nothing half-written."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from durable_agents import (
    DurableClient,
    InstanceNotFoundError,
    InvalidInstanceStateError,
    OrchestrationNotRegisteredError,
    OrchestrationStatus,
    PayloadTooLargeError,
    SerializationError,
    Settings,
    WaitTimeoutError,
)
from durable_agents.models import InboxRow, Instance
from durable_agents.store.db import transaction

from conftest import Services


def rows_for(services: Services, instance_id: str) -> tuple[int, int]:
    with transaction(services.database_url) as session:
        instances = session.scalar(select(func.count()).where(Instance.instance_id == instance_id))
        inbox = session.scalar(select(func.count()).where(InboxRow.instance_id == instance_id))
    return int(instances or 0), int(inbox or 0)


def test_unknown_orchestration_name_is_refused_by_a_client_that_knows_the_app(services: Services, client: Any) -> None:
    instance_id = f"bad-{uuid.uuid4().hex}"
    with pytest.raises(OrchestrationNotRegisteredError, match=r"no orchestration named 'sequense'.*sequence"):
        client.schedule_new_orchestration("sequense", instance_id=instance_id)
    assert rows_for(services, instance_id) == (0, 0)


def test_unknown_orchestration_name_fails_the_instance_on_the_worker(services: Services, client: Any) -> None:
    bare = DurableClient(taskhub=client.taskhub, database_url=services.database_url, redis_url=services.redis_url)
    instance_id = bare.schedule_new_orchestration("no_such_orchestration")
    state = bare.wait_for_orchestration_completion(instance_id)
    assert state.runtime_status == OrchestrationStatus.FAILED
    assert state.failure_details.error_type == "OrchestrationNotRegisteredError"
    assert "no_such_orchestration" in state.failure_details.message


def test_unknown_activity_name_fails_the_task_with_the_registered_names(client: Any) -> None:
    instance_id = client.schedule_new_orchestration("calls_unknown_activity")
    state = client.wait_for_orchestration_completion(instance_id)
    assert state.runtime_status == OrchestrationStatus.FAILED
    assert state.failure_details.error_type == "ActivityNotRegisteredError"
    assert "no activity named 'no_such_activity'" in state.failure_details.message
    assert "add_one" in state.failure_details.message


def test_input_that_is_not_json_is_refused(services: Services, client: Any) -> None:
    instance_id = f"bad-{uuid.uuid4().hex}"
    with pytest.raises(SerializationError, match="input of orchestration 'plain_function' cannot be stored as JSON"):
        client.schedule_new_orchestration("plain_function", input={"when": object()}, instance_id=instance_id)
    assert rows_for(services, instance_id) == (0, 0)


@pytest.mark.parametrize(
    ("value", "message"),
    [({"score": float("nan")}, "NaN and infinite numbers"), ("a\x00b", "NUL character")],
)
def test_input_the_store_cannot_keep_is_refused_before_it_reaches_it(
    services: Services, client: Any, value: Any, message: str
) -> None:
    instance_id = uuid.uuid4().hex
    with pytest.raises(SerializationError, match=message):
        client.schedule_new_orchestration("plain_function", input=value, instance_id=instance_id)
    assert rows_for(services, instance_id) == (0, 0)


def test_activity_input_that_is_not_json_fails_at_the_call_site(client: Any) -> None:
    state = client.wait_for_orchestration_completion(client.schedule_new_orchestration("unserialisable_activity_input"))
    assert state.failure_details.error_type == "SerializationError"
    assert "input of activity 'hello'" in state.failure_details.message


def test_payload_over_the_limit_is_refused_with_sizes(services: Services, client: Any) -> None:
    instance_id = f"bad-{uuid.uuid4().hex}"
    with pytest.raises(PayloadTooLargeError, match=r"over the limit of 1,048,576 bytes.*reference") as caught:
        client.schedule_new_orchestration("plain_function", input="x" * (1024 * 1024), instance_id=instance_id)
    assert caught.value.size == 1024 * 1024 + 2
    assert rows_for(services, instance_id) == (0, 0)


def test_event_for_unknown_instance(client: Any) -> None:
    with pytest.raises(InstanceNotFoundError, match="no orchestration instance 'ghost'"):
        client.raise_event("ghost", "approval_received", data={"approved": True})


def test_event_data_that_is_not_json_is_refused_and_not_stored(services: Services, client: Any) -> None:
    instance_id = client.schedule_new_orchestration("long_waiter")
    client.wait_for_orchestration_start(instance_id)
    before = rows_for(services, instance_id)
    with pytest.raises(SerializationError, match="data of event 'go'"):
        client.raise_event(instance_id, "go", data=object())
    assert rows_for(services, instance_id) == before
    client.terminate(instance_id)


def test_event_for_a_finished_instance(client: Any) -> None:
    instance_id = client.schedule_new_orchestration("plain_function", input=1)
    client.wait_for_orchestration_completion(instance_id)
    with pytest.raises(InvalidInstanceStateError, match="is COMPLETED; it can no longer receive event 'late'"):
        client.raise_event(instance_id, "late")


def test_yielding_a_non_task_fails_clearly(client: Any) -> None:
    state = client.wait_for_orchestration_completion(client.schedule_new_orchestration("yields_garbage"))
    assert state.failure_details.error_type == "OrchestrationYieldError"
    assert "yielded 42 (int)" in state.failure_details.message


def test_wait_timeout_names_the_status_and_leaves_the_instance_alone(client: Any) -> None:
    instance_id = client.schedule_new_orchestration("long_waiter")
    with pytest.raises(WaitTimeoutError, match="did not finish within 0.5s"):
        client.wait_for_orchestration_completion(instance_id, timeout=0.5)
    assert client.get_orchestration_state(instance_id).runtime_status == OrchestrationStatus.RUNNING
    client.terminate(instance_id)


def test_invalid_task_hub_name() -> None:
    with pytest.raises(ValueError, match="task hub name 'no spaces' is invalid"):
        Settings(taskhub="no spaces")


def test_naive_start_time_is_refused(client: Any) -> None:
    from datetime import datetime

    with pytest.raises(ValueError, match="aware datetime"):
        client.schedule_new_orchestration("plain_function", start_at=datetime(2030, 1, 1))


# -- times: bounded at every entry point, and any stored time readable ------------------------------


def test_a_start_time_outside_what_every_store_holds_is_refused(client: Any) -> None:
    from datetime import datetime, timedelta, timezone

    far = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-14)))  # year 10000 in UTC
    with pytest.raises(ValueError, match=r"start_at 9999-12-31T23:59:59-14:00 is out of range: give a time between"):
        client.schedule_new_orchestration("plain_function", start_at=far)
    # A filter's bound is moved into the range instead: nothing was created outside it.
    assert client.query_instances(created_from=far) == []
    assert client.purge_orchestrations(created_before=datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))) == 0


def test_a_stored_time_python_cannot_hold_breaks_no_listing_and_the_instance_can_be_ended(
    services: Services, client: Any
) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import text

    from conftest import run_cli

    instance_id = f"far-{uuid.uuid4().hex[:8]}"
    client.schedule_new_orchestration(
        "plain_function", instance_id=instance_id, start_at=datetime.now(UTC) + timedelta(days=365)
    )
    with transaction(services.database_url) as session:  # as a row written before start times were bounded
        for table, column in (("da_instances", "scheduled_start_at"), ("da_timers", "fire_at")):
            session.execute(
                text(f"UPDATE {table} SET {column} = '10000-01-01 13:59:59+00' WHERE instance_id = :id"),
                {"id": instance_id},
            )

    assert [s.instance_id for s in client.query_instances(instance_id_prefix=instance_id)] == [instance_id]
    env = {"DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url, "TASKHUB": client.taskhub}
    listed = run_cli("list", "--prefix", instance_id, env=env)
    assert listed.returncode == 0 and instance_id in listed.stdout, listed.stderr
    assert client.explain(instance_id).reason == "scheduled"
    assert client.terminate(instance_id)
    assert client.wait_for_orchestration_completion(instance_id).runtime_status == OrchestrationStatus.TERMINATED
    assert client.purge(instance_id) == 1


def test_a_start_time_already_past_starts_at_once(start_worker: Any, services: Services) -> None:
    from datetime import UTC, datetime, timedelta

    import workflows
    from conftest import new_taskhub

    # The sweeper of this worker would not find the instance for a minute: only a wake-up starts it sooner.
    worker = start_worker(new_taskhub("past"), extra_env={"DURABLE_AGENTS_REDISPATCH_AFTER": "60"})
    client = DurableClient(
        workflows.app, taskhub=worker.taskhub, database_url=services.database_url, redis_url=services.redis_url
    )
    started = client.schedule_new_orchestration(
        "plain_function", input="late", start_at=datetime.now(UTC) - timedelta(hours=1)
    )
    assert client.wait_for_orchestration_completion(started, timeout=20).output == {"echo": "late"}
