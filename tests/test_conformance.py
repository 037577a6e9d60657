"""The engine conformance suite (durabletask-python's scenarios) on real Postgres, Redis and a worker process."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from durable_agents import InvalidInstanceStateError, OrchestrationStatus

from conftest import make_client, wait_until

COMPLETED = OrchestrationStatus.COMPLETED
FAILED = OrchestrationStatus.FAILED


@pytest.fixture(scope="module", params=["cached", "cold-replay", "sqlite"])
def mode(request: pytest.FixtureRequest) -> str:
    """Every scenario runs three times: on a worker that keeps live executors, on one that replays
    every step from the stored history, and on one whose store is a SQLite file."""
    return str(request.param)


@pytest.fixture(scope="module")
def client(mode: str, request: pytest.FixtureRequest) -> Any:
    if mode == "sqlite":
        worker, services = request.getfixturevalue("sqlite_worker"), request.getfixturevalue("sqlite_services")
    else:
        worker = request.getfixturevalue("worker" if mode == "cached" else "cold_replay_worker")
        services = request.getfixturevalue("services")
    return make_client(services, worker.taskhub)


def run(client: Any, name: str, input: Any = None, timeout: float = 30) -> Any:
    instance_id = client.schedule_new_orchestration(name, input=input)
    return client.wait_for_orchestration_completion(instance_id, timeout=timeout)


def wait_for_history(client: Any, instance_id: str, event_type: str, count: int = 1) -> None:
    wait_until(
        lambda: sum(1 for e in client.get_history(instance_id) if e["type"] == event_type) >= count,
        message=f"{count} {event_type} event(s) in the history of {instance_id}",
    )


def test_empty_orchestration(client: Any) -> None:
    state = run(client, "empty")
    assert state.runtime_status == COMPLETED
    assert state.output is None
    assert state.serialized_output is None


def test_plain_function_orchestration_gets_its_input(client: Any) -> None:
    state = run(client, "plain_function", {"n": 3})
    assert state.output == {"echo": {"n": 3}}
    assert state.serialized_input == '{"n": 3}'


def test_activity_sequence_sync_and_async(client: Any) -> None:
    state = run(client, "sequence")
    assert state.runtime_status == COMPLETED
    assert state.output == {"greetings": ["Hello, Tokyo!", "Hello, Seattle!", "Hello, London!"], "doubled": 42}
    history = client.get_history(state.instance_id)
    scheduled = [e["name"] for e in history if e["type"] == "TaskScheduled"]
    assert scheduled == ["hello", "hello", "hello", "async_double"]
    assert [e["seq"] for e in history] == list(range(len(history)))


def test_pydantic_and_dataclass_values_round_trip_by_schema(client: Any) -> None:
    state = run(client, "typed")
    assert state.output == {"item": "tea", "total": 10.0}


def test_activity_failure_caught_carries_type_message_and_traceback(client: Any) -> None:
    state = run(client, "catch_failure")
    assert state.runtime_status == COMPLETED
    assert state.output == {
        "caught": "activity 'boom' (task #1) failed: RuntimeError: kaput",
        "type": "RuntimeError",
        "message": "kaput",
        "has_traceback": True,
    }


def test_activity_failure_uncaught_fails_the_instance(client: Any) -> None:
    state = run(client, "uncaught_failure")
    assert state.runtime_status == FAILED
    assert state.failure_details is not None
    assert state.failure_details.error_type == "RuntimeError"
    assert state.failure_details.message == "nobody catches this"
    assert "boom" in (state.failure_details.stack_trace or "")


def test_an_uncaught_failure_reports_the_chain_of_tasks_it_failed_through(client: Any) -> None:
    state = run(client, "parent_of_boom")
    assert state.runtime_status == FAILED
    details = state.failure_details
    assert details is not None
    assert (details.error_type, details.message) == ("RuntimeError", "Kah-BOOOOM!!!")  # the innermost cause
    assert "RuntimeError: Kah-BOOOOM!!!" in (details.stack_trace or "")
    child = f"{state.instance_id}-child"
    assert [link.to_json() for link in details.chain] == [
        {"kind": "sub-orchestration", "name": "boom_with_retries", "task_id": 1, "instance_id": child, "attempts": 1},
        {"kind": "activity", "name": "boom", "task_id": 3, "instance_id": child, "attempts": 2},
    ]
    assert str(details) == (
        f"sub-orchestration 'boom_with_retries' (task #1, instance '{child}') failed: "
        "activity 'boom' (task #3, after 2 attempts) failed: RuntimeError: Kah-BOOOOM!!!"
    )
    assert client.get_orchestration_state(child).failure_details.chain == details.chain[1:]


def test_retries_with_backoff_until_success(client: Any) -> None:
    state = run(client, "with_retries", {"max_attempts": 5, "succeed_on": 3})
    assert state.runtime_status == COMPLETED
    assert state.output == 3
    history = client.get_history(state.instance_id)
    retry_timers = [e for e in history if e["type"] == "TimerCreated" and e["purpose"] == "retry"]
    assert len(retry_timers) == 2
    gaps = []
    for timer in retry_timers:
        started = max(
            (e for e in history if e["type"] == "StepStarted" and e["seq"] < timer["seq"]), key=lambda e: e["seq"]
        )
        gaps.append(datetime.fromisoformat(timer["fire_at"]) - datetime.fromisoformat(started["timestamp"]))
    assert gaps == [timedelta(milliseconds=200), timedelta(milliseconds=400)]  # backoff coefficient 2


def test_retries_until_give_up(client: Any) -> None:
    state = run(client, "with_retries", {"max_attempts": 2, "succeed_on": 10})
    assert state.runtime_status == FAILED
    assert state.failure_details is not None
    assert state.failure_details.error_type == "ConnectionError"
    scheduled = [e for e in client.get_history(state.instance_id) if e["type"] == "TaskScheduled"]
    assert len(scheduled) == 2


def test_fan_out_fan_in_of_200_activities(client: Any) -> None:
    state = run(client, "fan_out", 200, timeout=60)
    assert state.runtime_status == COMPLETED
    assert state.output == sum(i * i for i in range(200))
    history = client.get_history(state.instance_id)
    assert sum(1 for e in history if e["type"] == "TaskCompleted") == 200


def test_fan_out_with_one_failing_activity(client: Any) -> None:
    state = run(client, "fan_out_one_fails", 200, timeout=60)
    assert state.runtime_status == COMPLETED
    assert state.output == {"error": "unlucky number 13", "failed": [14]}  # task ids count from 1


def test_task_any_event_beats_timer(client: Any) -> None:
    instance_id = client.schedule_new_orchestration("approval", input={"timeout_seconds": 3600})
    wait_for_history(client, instance_id, "TimerCreated")
    client.raise_event(instance_id, "approval_received", data={"approved": True})
    state = client.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state.output == {"status": "approved", "data": {"approved": True}}


def test_task_any_timer_beats_event(client: Any) -> None:
    state = run(client, "approval", {"timeout_seconds": 0.3})
    assert state.output == {"status": "escalated"}


def test_timer_wins_tie_with_event_timeout_in_reference_hitl_shape(client: Any) -> None:
    state = run(client, "approval_with_wait_timeout")
    assert state.output == {"status": "escalated"}


def test_the_losing_timer_is_cancelled_and_a_second_wait_gets_its_own_event(client: Any) -> None:
    from sqlalchemy import func, select

    from durable_agents.models import Timer
    from durable_agents.store.db import transaction

    instance_id = client.schedule_new_orchestration("approval_cancelling_the_loser", input=3600)
    wait_for_history(client, instance_id, "TimerCreated")
    client.raise_event(instance_id, "approval_received", data="first")
    wait_for_history(client, instance_id, "TaskCancelled")
    with transaction(client.settings.database_url) as session:  # the cancelled timer can never fire
        timers = session.scalar(select(func.count()).select_from(Timer).where(Timer.instance_id == instance_id))
    assert timers == 0
    client.raise_event(instance_id, "approval_received", data="second")
    state = client.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state.output == {"first": "first", "again": "second"}
    history = client.get_history(instance_id)
    assert "TimerFired" not in [event["type"] for event in history]
    (cancelled,) = [event for event in history if event["type"] == "TaskCancelled"]
    assert (cancelled["kind"], cancelled["target_task_id"]) == ("timer", 1)


def test_competing_events_the_losing_wait_is_cancelled(client: Any) -> None:
    instance_id = client.schedule_new_orchestration("approve_or_reject")
    client.raise_event(instance_id, "approve", data="yes")
    wait_for_history(client, instance_id, "TaskCancelled")
    client.raise_event(instance_id, "reject", data="later")
    state = client.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state.output == {"winner": "approve", "later": "later"}  # without the cancel, the loser took it


def test_a_cancelled_sub_orchestration_is_terminated(client: Any) -> None:
    state = run(client, "cancels_its_child")
    assert state.output["child_won"] is False
    child = state.output["child"]
    wait_until(
        lambda: client.get_orchestration_state(child).runtime_status == OrchestrationStatus.TERMINATED,
        message="the cancelled child to be terminated",
    )
    history = client.get_history(state.instance_id)
    assert [event["kind"] for event in history if event["type"] == "TaskCancelled"] == ["sub_orchestration"]
    assert "SubOrchestrationFailed" not in [event["type"] for event in history]


def test_event_wait_timeout_raises_event_timeout_error(client: Any) -> None:
    state = run(client, "event_timeout")
    assert state.output == "timed out: no event 'never' arrived before the wait timed out"


def test_events_raised_before_the_wait_are_buffered_in_order(client: Any) -> None:
    instance_id = client.schedule_new_orchestration("collect_events")
    for item in ["first", "second", "third"]:
        client.raise_event(instance_id, "item", data=item)
    state = client.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state.output == ["first", "second", "third"]


def test_durable_timer(client: Any) -> None:
    state = run(client, "sleeper")
    assert state.runtime_status == COMPLETED
    assert state.output >= 0.5  # current_utc_datetime moved past the timer's fire time


def test_scheduled_start(client: Any) -> None:
    start_at = datetime.now(UTC) + timedelta(seconds=1)
    instance_id = client.schedule_new_orchestration("plain_function", input=1, start_at=start_at)
    assert client.get_orchestration_state(instance_id).runtime_status == OrchestrationStatus.PENDING
    state = client.wait_for_orchestration_completion(instance_id, timeout=30)
    assert state.output == {"echo": 1}
    assert state.completed_at >= start_at


def test_sub_orchestrations_single_and_fan_out(client: Any) -> None:
    state = run(client, "parent")
    assert state.output == {"single": 10, "many": [0, 2, 4, 6, 8]}
    children = client.query_instances(instance_id_prefix=f"{state.instance_id}:")
    assert len(children) == 6
    assert {c.parent_instance_id for c in children} == {state.instance_id}


def test_sub_orchestration_failure_surfaces_in_parent(client: Any) -> None:
    state = run(client, "failing_child_parent")
    assert state.output == {"caught": "nobody catches this"}


def test_terminate_is_recursive(client: Any) -> None:
    instance_id = client.schedule_new_orchestration("parent_of_waiters")
    wait_until(lambda: len(client.query_instances(instance_id_prefix=f"{instance_id}:")) == 2, message="2 children")
    children = [c.instance_id for c in client.query_instances(instance_id_prefix=f"{instance_id}:")]
    for child_id in children:
        client.wait_for_orchestration_start(child_id)
    assert client.terminate(instance_id, output="stopped by test") is True
    state = client.wait_for_orchestration_completion(instance_id)
    assert state.runtime_status == OrchestrationStatus.TERMINATED
    assert state.output == "stopped by test"
    for child_id in children:
        assert client.wait_for_orchestration_completion(child_id).runtime_status == OrchestrationStatus.TERMINATED
    assert client.terminate(instance_id) is False  # already finished: nothing to do


def test_suspend_holds_events_until_resume(client: Any) -> None:
    instance_id = client.schedule_new_orchestration("suspendable")
    client.wait_for_orchestration_start(instance_id)
    client.suspend(instance_id, reason="maintenance")
    wait_until(
        lambda: client.get_orchestration_state(instance_id).runtime_status == OrchestrationStatus.SUSPENDED,
        message="SUSPENDED",
    )
    client.raise_event(instance_id, "go", data=41)
    wait_until(lambda: client.get_history(instance_id)[-1]["type"] == "ExecutionSuspended", message="suspension")
    # The event waits in the inbox: the instance does not move while suspended.
    assert client.get_orchestration_state(instance_id).runtime_status == OrchestrationStatus.SUSPENDED
    assert not any(e["type"] == "EventRaised" for e in client.get_history(instance_id))
    client.resume(instance_id)
    state = client.wait_for_orchestration_completion(instance_id)
    assert state.output == 42


def test_an_activity_finishing_while_suspended_delivers_its_result_on_resume(client: Any, effects_dir: Path) -> None:
    label = uuid.uuid4().hex
    instance_id = client.schedule_new_orchestration("crash_target", input=label)
    runs = effects_dir / f"runs-{label}"
    wait_until(runs.exists, message="the activity to start")
    client.suspend(instance_id)
    wait_for_history(client, instance_id, "ExecutionSuspended")
    (effects_dir / f"gate-{label}").touch()  # the activity finishes while its instance is suspended
    wait_until(lambda: _pending_inbox_events(client, instance_id) == ["TaskCompleted"], message="the held result")
    assert client.get_orchestration_state(instance_id).runtime_status == OrchestrationStatus.SUSPENDED
    client.resume(instance_id)
    state = client.wait_for_orchestration_completion(instance_id)
    assert state.runtime_status == COMPLETED
    assert state.output == (effects_dir / f"effects-{label}").read_text().strip()
    types = [e["type"] for e in client.get_history(instance_id)]
    assert types.index("TaskCompleted") > types.index("ExecutionResumed")


def _pending_inbox_events(client: Any, instance_id: str) -> list[str]:
    from sqlalchemy import select

    from durable_agents.models import InboxRow
    from durable_agents.store.db import transaction

    with transaction(client.settings.database_url) as session:
        events = session.scalars(
            select(InboxRow.event).where(InboxRow.taskhub == client.taskhub, InboxRow.instance_id == instance_id)
        ).all()
    return [event["type"] for event in events]


def test_continue_as_new_restarts_with_fresh_history(client: Any) -> None:
    state = run(client, "counter", {"count": 0, "target": 5})
    assert state.runtime_status == COMPLETED
    assert state.output == 5
    assert state.custom_status == {"count": 5}
    history = client.get_history(state.instance_id)
    assert sum(1 for e in history if e["type"] == "ExecutionStarted") == 1
    assert history[1]["input"] == {"count": 4, "target": 5}


def test_custom_status_is_visible_while_running(client: Any) -> None:
    instance_id = client.schedule_new_orchestration("custom_status")
    wait_until(
        lambda: client.get_orchestration_state(instance_id).custom_status == {"stage": "waiting"},
        message="custom status 'waiting'",
    )
    client.raise_event(instance_id, "proceed", data=7)
    state = client.wait_for_orchestration_completion(instance_id)
    assert state.custom_status == {"stage": "done", "data": 7}
    assert json.loads(state.serialized_custom_status) == {"stage": "done", "data": 7}


def test_new_uuid_and_time_are_stable_across_replays(client: Any, mode: str) -> None:
    state = run(client, "determinism")
    assert state.runtime_status == COMPLETED
    recorded = [e["input"] for e in client.get_history(state.instance_id) if e["type"] == "TaskScheduled"]
    # What the code returns after its final step equals what it handed out in earlier steps.
    assert state.output["uuids"] == [recorded[0]["uuid"], recorded[1]["uuid"]]
    assert state.output["first_time"] == recorded[0]["time"]
    assert len(set(state.output["uuids"])) == 2 and all(uuid.UUID(u) for u in state.output["uuids"])
    # A cold worker replays the earlier steps before the last one; a caching worker never replays.
    assert state.output["replaying_flags"] == ([True, True] if mode == "cold-replay" else [False, False])


def test_timers_of_days_are_rows_in_the_store_not_broker_etas(client: Any) -> None:
    import redis
    from sqlalchemy import select, update

    from durable_agents.models import Timer
    from durable_agents.store.db import transaction

    instance_id = client.schedule_new_orchestration("long_timer")
    wait_for_history(client, instance_id, "TimerCreated")
    with transaction(client.settings.database_url) as session:
        fire_at = session.scalar(select(Timer.fire_at).where(Timer.instance_id == instance_id))
    assert fire_at is not None and fire_at - datetime.now(UTC) > timedelta(days=2, hours=23)
    broker = redis.Redis.from_url(client.settings.redis_url)
    assert broker.llen(client.settings.queue("orchestrator")) == 0  # nothing waits in the broker
    with transaction(client.settings.database_url) as session:  # three days pass
        session.execute(update(Timer).where(Timer.instance_id == instance_id).values(fire_at=datetime.now(UTC)))
    state = client.wait_for_orchestration_completion(instance_id)
    assert state.runtime_status == COMPLETED


def test_purge_by_id_and_by_filter(client: Any) -> None:
    finished = run(client, "plain_function", "purge me")
    assert client.purge(finished.instance_id) == 1
    assert client.get_orchestration_state(finished.instance_id) is None

    running = client.schedule_new_orchestration("long_waiter")
    client.wait_for_orchestration_start(running)
    with pytest.raises(InvalidInstanceStateError, match="terminate it first"):
        client.purge(running)

    old = run(client, "plain_function", "old")
    purged = client.purge_orchestrations(
        created_before=datetime.now(UTC) + timedelta(seconds=1), statuses=["COMPLETED"]
    )
    assert purged >= 1
    assert client.get_orchestration_state(old.instance_id) is None
    assert client.get_orchestration_state(running) is not None  # running instances are never purged
    client.terminate(running)


def test_query_filters_and_paging(client: Any) -> None:
    name = "plain_function"
    ids = [client.schedule_new_orchestration(name, input=i, instance_id=f"page-{uuid.uuid4().hex}") for i in range(5)]
    for instance_id in ids:
        client.wait_for_orchestration_completion(instance_id)
    first = client.query_instances(name=name, instance_id_prefix="page-", limit=3)
    second = client.query_instances(name=name, instance_id_prefix="page-", limit=3, offset=3)
    assert len(first) == 3 and len(second) >= 2
    assert not {s.instance_id for s in first} & {s.instance_id for s in second}
    assert all(s.runtime_status == COMPLETED for s in first)
    assert client.query_instances(statuses=["FAILED"], instance_id_prefix="page-") == []


def test_tags_are_stored_returned_and_filtered(client: Any) -> None:
    team = f"team-{uuid.uuid4().hex[:8]}"
    tagged = client.schedule_new_orchestration("tagged_parent", input=team, tags={"Tagged": "true", "team": team})
    plain = client.schedule_new_orchestration("plain_function", input=1, tags={"team": team})
    assert client.wait_for_orchestration_completion(tagged, timeout=30).tags == {"Tagged": "true", "team": team}
    client.wait_for_orchestration_completion(plain, timeout=30)

    def found(**tags: str) -> set[str]:
        return {state.instance_id for state in client.query_instances(tags=tags)}

    child = f"{tagged}-child"
    assert found(team=team) == {tagged, plain, child}
    assert found(team=team, Tagged="true") == {tagged}
    assert found(team=team, kind="child") == {child}
    assert found(team=team, Tagged="false") == set()
    assert client.get_orchestration_state(child).tags == {"team": team, "kind": "child"}
    scheduled = [event for event in client.get_history(tagged) if event["type"] == "TaskScheduled"]
    assert scheduled[0]["tags"] == {"step": "greet"}
    with pytest.raises(ValueError, match="tag name 'bad name' is not allowed"):
        client.schedule_new_orchestration("plain_function", tags={"bad name": "x"})
    with pytest.raises(ValueError, match="must be a string"):
        client.query_instances(tags={"team": 3})


def test_explicit_instance_id_reuse(client: Any) -> None:
    instance_id = f"fixed-{uuid.uuid4().hex}"
    client.schedule_new_orchestration("plain_function", input=1, instance_id=instance_id)
    from durable_agents import InstanceExistsError

    with pytest.raises(InstanceExistsError, match="already in use"):
        client.schedule_new_orchestration("plain_function", input=2, instance_id=instance_id)
    client.wait_for_orchestration_completion(instance_id)
    client.schedule_new_orchestration("plain_function", input=3, instance_id=instance_id, reuse_id=True)
    assert client.wait_for_orchestration_completion(instance_id).output == {"echo": 3}


def test_send_event_starts_the_target_and_delivers_once(client: Any) -> None:
    target = f"target-{uuid.uuid4().hex}"
    state = run(client, "notifier", target)
    assert state.output == "ping -> pong"
    assert client.wait_for_orchestration_completion(target).output == "ping"
    sent = [e for e in client.get_history(state.instance_id) if e["type"] == "EventSent"]
    assert [(e["instance_id"], e["name"]) for e in sent] == [(target, "item")]
