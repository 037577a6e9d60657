"""In-step activities: user code that runs inside the step's own transaction, its writes committed with it.

Locks on idle entities are granted here too, in the same rounds: the code goes on inside its critical
section in the step that asked (`steps/entity_sends.grant_idle_locks`)."""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from typing import Any, TypeGuard

from sqlalchemy.orm import Session

from .. import ids
from ..errors import FailureDetails
from ..orchestrator.executor import ReplayExecutor, StepResult
from ..orchestrator.history import (
    EntityLockRequested,
    FailureInfo,
    HistoryEvent,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    event_to_json,
)
from ..registry import ActivityContext, Registry, invoke
from ..serialization import encode
from ..store.locked import LockedInstance
from ..telemetry.metrics import labelled, metrics
from ..telemetry.tracing import failed, span
from .entity_sends import grant_idle_locks

log = logging.getLogger(__name__)

#: Rounds of in-step activities one step runs before it leaves the rest to work items, so that code
#: calling them in a loop cannot hold a step's transaction open without end.
IN_STEP_ROUNDS = 8

#: Set in a step's `Session.info` to run each in-step activity under a savepoint of its own. A step
#: runs without them first, two round trips fewer per activity: in-step activities rarely fail, and
#: one that does raises InStepActivityError, whose step is rolled back and run again with them.
ISOLATE_IN_STEP = "durable_agents.isolate_in_step"


class InStepActivityError(Exception):
    """An in-step activity failed in a step run without savepoints: run the step again, with them."""


def run_in_step_activities(
    session: Session,
    instance: LockedInstance,
    executor: ReplayExecutor,
    result: StepResult,
    recorded: list[dict[str, Any]],
    registry: Registry,
    max_payload_bytes: int,
) -> StepResult:
    """Run the in-step activities the code scheduled (`ActivitySpec.in_step`) and feed their outcomes
    back to it, round after round, all in this transaction. Appends every event of the step to
    `recorded`, in the order they happened; returns the last round's result, whose new events are every
    other action of the step (work items, timers, children, events sent) for the step to carry out."""
    actions: list[HistoryEvent] = []
    custom_status_changed = result.custom_status_changed
    for _ in range(IN_STEP_ROUNDS):
        if result.outcome != "running":
            break
        here = [event for event in result.new_events if _is_in_step(event, registry)]
        granted = grant_idle_locks(session, instance, result.new_events, registry)
        if not here and not granted:
            break
        outcomes = [_observed(session, instance, event, registry, max_payload_bytes) for event in here]
        outcomes += [TaskCompleted(task_id=task_id) for task_id in granted]
        recorded += [event_to_json(event) for event in [*result.new_events, *outcomes]]
        actions += [
            event
            for event in result.new_events
            if not _is_in_step(event, registry)
            and not (isinstance(event, EntityLockRequested) and event.task_id in granted)
        ]
        result = executor.execute(outcomes)
        custom_status_changed = custom_status_changed or result.custom_status_changed
    recorded += [event_to_json(event) for event in result.new_events]
    result.new_events = [*actions, *result.new_events]
    result.custom_status_changed = custom_status_changed
    return result


def _is_in_step(event: HistoryEvent, registry: Registry) -> TypeGuard[TaskScheduled]:
    if not isinstance(event, TaskScheduled):
        return False
    spec = registry.activities.get(event.name)
    return spec is not None and spec.in_step


def _observed(
    session: Session, instance: LockedInstance, event: TaskScheduled, registry: Registry, max_payload_bytes: int
) -> TaskCompleted | TaskFailed:
    """`_run_in_step` in a span under the step's, counted with the other activities."""
    attributes = {"durable.task_id": event.task_id, "durable.in_step": True}
    clock = time.perf_counter()
    with span(f"activity {event.name}", attributes) as current:
        outcome = _run_in_step(session, instance, event, registry, max_payload_bytes)
        if isinstance(outcome, TaskFailed):
            failed(current, f"{outcome.failure.error_type}: {outcome.failure.message}")
    recorded = metrics()
    labelled(recorded.activities, event.name, "completed" if isinstance(outcome, TaskCompleted) else "failed").inc()
    labelled(recorded.activity_seconds, event.name).observe(time.perf_counter() - clock)
    return outcome


def _run_in_step(
    session: Session, instance: LockedInstance, event: TaskScheduled, registry: Registry, max_payload_bytes: int
) -> TaskCompleted | TaskFailed:
    """One in-step activity. Under a savepoint (ISOLATE_IN_STEP), a failure undoes its writes and the code
    gets it; without one, a failure raises InStepActivityError (the whole step is then undone)."""
    spec = registry.activity(event.name)
    context = ActivityContext(
        taskhub=instance.taskhub,
        instance_id=instance.instance_id,
        task_id=event.task_id,
        name=event.name,
        attempt=1,
        idempotency_key=ids.activity_idempotency_key(
            instance.taskhub, instance.instance_id, instance.execution_id, event.task_id
        ),
    )
    isolated = bool(session.info.get(ISOLATE_IN_STEP))
    try:
        with session.begin_nested() if isolated else nullcontext():
            value = invoke(spec, context, event.input, session)
            # Inside the savepoint: a result too large to record undoes the writes that made it.
            result = encode(value, what=f"result of activity {event.name!r}", limit=max_payload_bytes)
    except Exception as error:
        if not isolated:
            raise InStepActivityError(f"in-step activity {event.name!r} failed") from error
        log.info("in-step activity %s of %s failed: %r", event.name, instance.instance_id, error)
        return TaskFailed(task_id=event.task_id, failure=FailureInfo.of(FailureDetails.from_exception(error)))
    return TaskCompleted(task_id=event.task_id, result=result)
