"""Task cancellation in the pure engine: what `task.cancel()` records, forgets and refuses, live and replayed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from durable_agents.errors import InvalidInstanceStateError, NonDeterminismError, TaskCancelledError
from durable_agents.orchestrator import RetryPolicy
from durable_agents.orchestrator.history import (
    EventRaised,
    ExecutionCompleted,
    SubOrchestrationFailed,
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    TimerCreated,
    TimerFired,
)
from test_replay_engine import Instance, at, failure


@pytest.fixture(params=[False, True], ids=["cached-executor", "fresh-replay"])
def fresh(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def approval_then_again(ctx: Any) -> Any:
    """The reference's human-in-the-loop race, cancelling the loser, then a second wait for the same event."""
    approval = ctx.wait_for_external_event("approval")
    timeout = ctx.create_timer(timedelta(hours=24))
    winner = yield ctx.task_any([approval, timeout])
    if winner is approval:
        timeout.cancel()
    else:
        approval.cancel()
    again = yield ctx.wait_for_external_event("approval")
    return {"first": approval.result if winner is approval else "timed out", "again": again}


def test_the_losing_timer_is_cancelled_and_recorded(fresh: bool) -> None:
    instance = Instance(approval_then_again)
    assert instance.start(fresh=fresh).new_events == [TimerCreated(task_id=1, fire_at=at(hours=24), purpose="timer")]
    result = instance.step(EventRaised(name="approval", data="yes"), fresh=fresh)
    assert result.new_events == [TaskCancelled(task_id=2, kind="timer", target_task_id=1)]
    assert instance.executor is not None and instance.executor.is_stale(TimerFired(task_id=1, fire_at=at(hours=24)))
    done = instance.step(EventRaised(name="approval", data="again"), fresh=fresh)
    assert done.result == {"first": "yes", "again": "again"}


def test_a_cancelled_wait_no_longer_takes_the_event_a_later_wait_gets_it(fresh: bool) -> None:
    instance = Instance(approval_then_again)
    instance.start(fresh=fresh)
    fired = instance.step(TimerFired(task_id=1, fire_at=at(hours=24)), at=at(hours=24), fresh=fresh)
    assert fired.new_events == [TaskCancelled(task_id=2, kind="event", name="approval")]
    done = instance.step(EventRaised(name="approval", data="late"), fresh=fresh)
    assert done.result == {"first": "timed out", "again": "late"}


def approve_or_reject(ctx: Any) -> Any:
    approve = ctx.wait_for_external_event("approve", timeout=timedelta(hours=1))
    reject = ctx.wait_for_external_event("reject")
    winner = yield ctx.task_any([approve, reject])
    loser = reject if winner is approve else approve
    assert loser.cancel() is True
    assert winner.cancel() is False  # completed already: nothing to cancel
    later = yield ctx.wait_for_external_event("reject")
    return {"winner": winner.name, "later": later}


def test_competing_events_cancel_the_loser_and_its_timeout(fresh: bool) -> None:
    instance = Instance(approve_or_reject)
    instance.start(fresh=fresh)  # the approve wait's timeout timer is task 1
    result = instance.step(EventRaised(name="reject", data="no"), fresh=fresh)
    assert result.new_events == [TaskCancelled(task_id=2, kind="event", name="approve", target_task_id=1)]
    done = instance.step(EventRaised(name="reject", data="second"), fresh=fresh)
    assert done.result == {"winner": "reject", "later": "second"}


def cancels_work(ctx: Any) -> Any:
    work = ctx.call_activity("slow")
    child = ctx.call_sub_orchestrator("child", instance_id="kid")
    yield ctx.create_timer(timedelta(seconds=5))
    work.cancel()
    child.cancel()
    try:
        yield work
    except TaskCancelledError as error:
        return str(error)


def test_cancelled_activity_and_child_are_recorded_and_yielding_them_raises(fresh: bool) -> None:
    instance = Instance(cancels_work)
    instance.start(fresh=fresh)
    result = instance.step(TimerFired(task_id=3, fire_at=at(seconds=5)), fresh=fresh)
    assert result.new_events[:2] == [
        TaskCancelled(task_id=4, kind="activity", name="slow", target_task_id=1),
        TaskCancelled(task_id=5, kind="sub_orchestration", name="child", target_task_id=2, instance_id="kid"),
    ]
    assert result.result == "activity 'slow' (task #1) was cancelled by the orchestration"
    executor = instance.executor
    assert executor is not None
    assert executor.is_stale(TaskCompleted(task_id=1, result=1))
    assert executor.is_stale(SubOrchestrationFailed(task_id=2, failure=failure("terminated")))
    assert not executor.is_stale(TaskCompleted(task_id=3, result=1))


def cancels_in_the_step_it_schedules(ctx: Any) -> Any:
    work = ctx.call_activity("never")
    work.cancel()
    return "done"


def test_a_task_cancelled_in_its_own_step_is_recorded_in_order() -> None:
    result = Instance(cancels_in_the_step_it_schedules).start()
    assert result.new_events == [
        TaskScheduled(task_id=1, name="never"),
        TaskCancelled(task_id=2, kind="activity", name="never", target_task_id=1),
        ExecutionCompleted(status="COMPLETED", result="done"),
    ]


def test_code_that_no_longer_cancels_fails_replay_with_non_determinism() -> None:
    instance = Instance(approval_then_again)
    instance.start()
    instance.step(EventRaised(name="approval", data="yes"))

    def forgets_to_cancel(ctx: Any) -> Any:
        approval = ctx.wait_for_external_event("approval")
        ctx.create_timer(timedelta(hours=24))
        yield approval
        yield ctx.wait_for_external_event("approval")

    instance.orchestrator = forgets_to_cancel
    with pytest.raises(NonDeterminismError, match=r"cancel\(\) of the timer #1"):
        raise_replay_failure(instance)


def raise_replay_failure(instance: Instance) -> None:
    executor = instance.fresh()
    assert executor.replay_failure is not None
    raise NonDeterminismError(executor.replay_failure.message)


def test_a_composite_task_cannot_be_cancelled() -> None:
    def cancels_a_composite(ctx: Any) -> Any:
        both = ctx.task_all([ctx.create_timer(timedelta(seconds=1)), ctx.create_timer(timedelta(seconds=2))])
        both.cancel()
        yield both

    result = Instance(cancels_a_composite).start()
    assert result.outcome == "failed"
    assert result.failure is not None and result.failure.error_type == InvalidInstanceStateError.__name__


def test_a_retrying_activity_cancelled_between_attempts_drops_its_retry_timer() -> None:
    def retries_then_cancels(ctx: Any) -> Any:
        policy = RetryPolicy(first_retry_interval=timedelta(minutes=1), max_number_of_attempts=3)
        work = ctx.call_activity("flaky", retry_policy=policy)
        yield ctx.create_timer(timedelta(seconds=30))
        work.cancel()
        return "gave up"

    instance = Instance(retries_then_cancels)
    instance.start()
    retrying = instance.step(TaskFailed(task_id=1, failure=failure("flaky")), at=at(seconds=1))
    assert retrying.new_events == [TimerCreated(task_id=3, fire_at=at(minutes=1, seconds=1), purpose="retry")]
    done = instance.step(TimerFired(task_id=2, fire_at=at(seconds=30)), at=at(seconds=30))
    assert done.new_events[0] == TaskCancelled(task_id=4, kind="activity", name="flaky", target_task_id=3)
    assert done.result == "gave up"
