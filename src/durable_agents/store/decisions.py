"""Writing what a step decided: history, work items, timers, children, events sent, and how it ended.

Each function writes in the step's transaction and returns what must be published once it commits
(the instances to wake, the work to dispatch); none of them runs user code or decides anything.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .. import ids
from ..errors import FailureDetails, InstanceExistsError
from ..models import (
    InboxRow,
    Instance,
    WorkItem,
    history_table,
    inbox_table,
    instances_table,
    timers_table,
    work_items_table,
)
from ..orchestrator.history import (
    EventRaised,
    EventSent,
    ExecutionStarted,
    ExecutionTerminated,
    FailureInfo,
    HistoryEvent,
    Json,
    StepStarted,
    SubOrchestrationCompleted,
    SubOrchestrationCreated,
    SubOrchestrationFailed,
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    TimerCreated,
    event_to_json,
)
from ..state import TERMINAL
from . import dialect, entities, inbox
from .combined_writes import CombinedWrites
from .immediate_writes import ImmediateWrites
from .instances import ensure_started, insert_new_instance
from .locked import LockedInstance
from .writes import StepWrites

if TYPE_CHECKING:
    from .writes import AnyRow

log = logging.getLogger(__name__)

#: Instances to wake once the transaction commits.
Wakes = list[str]
#: An execution's start or an event carried over to it, with the execution it belongs to (None: any).
Delivery = tuple[str | None, HistoryEvent]


@dataclass(frozen=True)
class NewChild:
    """A sub-orchestration created in this transaction: its instance row as inserted, and its start."""

    row: Mapping[str, Any]
    started: ExecutionStarted


@dataclass(frozen=True)
class Lease:
    """Who will run a new work item in place: it is written already leased, saving a claim."""

    owner: str
    seconds: float


@dataclass
class NewWork:
    """The work items a step wrote. Their ids come back with the step's writes: read `activities` and
    `claimed` once `StepWrites.send()` has run."""

    count: int = 0
    #: (work item id, activity name) of each item to dispatch; the name picks the queue.
    activities: list[tuple[int, str]] = field(default_factory=list)
    #: The one item written leased (see `Lease`), for its owner to run.
    claimed: WorkItem | None = None


def open_writes(session: Session) -> StepWrites:
    """Where a step gathers its writes: one statement where the database allows (see `StepWrites`)."""
    return CombinedWrites(session) if dialect.of(session).writes_in_one_statement else ImmediateWrites(session)


def append_history(writes: StepWrites, instance: LockedInstance, events: list[dict[str, Any]]) -> None:
    base = instance.history_length
    writes.insert(
        history_table,
        [
            {
                "taskhub": instance.taskhub,
                "instance_id": instance.instance_id,
                "seq": base + offset,
                "execution_id": instance.execution_id,
                "event": event,
            }
            for offset, event in enumerate(events)
        ],
    )
    instance.history_length = base + len(events)


def delete_inbox(writes: StepWrites, row_ids: list[int]) -> None:
    writes.delete(inbox_table, {"id": row_ids})


def hold_completion(
    session: Session, instance: LockedInstance, execution_id: str, event: TaskCompleted | TaskFailed
) -> None:
    """Keep an activity's outcome that reached the step directly (not through the inbox) for a later step:
    it goes into the inbox, once."""
    inbox.post(
        session,
        instance.taskhub,
        instance.instance_id,
        event,
        execution_id=execution_id,
        dedupe_key=ids.task_key(execution_id, event.task_id),
    )


def fail_task_now(session: Session, instance: LockedInstance, task_id: int, error: Exception) -> Wakes:
    """Fail task `task_id` of the instance without running it (nothing could); the instance learns it
    at its next step."""
    hold_completion(
        session,
        instance,
        instance.execution_id,
        TaskFailed(task_id=task_id, failure=FailureInfo.of(FailureDetails.from_exception(error))),
    )
    return [instance.instance_id]


def write_work(
    writes: StepWrites,
    instance: LockedInstance,
    activities: Sequence[TaskScheduled],
    timers: Sequence[TimerCreated],
    now: datetime,
    lease: Lease | None,
) -> NewWork:
    """Work items for `activities` (with `lease`, the only one, leased already) and timers for `timers`."""
    hub, execution_id = instance.taskhub, instance.execution_id
    rows: list[dict[str, Any]] = [
        {
            "taskhub": hub,
            "instance_id": instance.instance_id,
            "execution_id": execution_id,
            "task_id": event.task_id,
            "name": event.name,
            "input": event.input,
            "status": "pending",
            "attempts": 0,
            "lease_owner": None,
            "lease_expires_at": None,
        }
        for event in activities
    ]
    if lease is not None:
        (claimed,) = rows
        expires = now + timedelta(seconds=lease.seconds)
        claimed.update(status="running", lease_owner=lease.owner, lease_expires_at=expires, attempts=1)
    work = NewWork(count=len(rows))

    def written(returned: Sequence[AnyRow]) -> None:
        item_ids = {row.task_id: row.id for row in returned}
        if lease is not None:
            work.claimed = WorkItem(id=item_ids[rows[0]["task_id"]], **rows[0])
        else:
            work.activities.extend((item_ids[row["task_id"]], row["name"]) for row in rows)

    writes.insert(work_items_table, rows, returning=("id", "task_id"), then=written)
    timer_rows = [
        {
            "taskhub": hub,
            "instance_id": instance.instance_id,
            "execution_id": execution_id,
            "task_id": event.task_id,
            "fire_at": event.fire_at,
            "purpose": event.purpose,
        }
        for event in timers
    ]
    writes.insert(timers_table, timer_rows)
    return work


def create_child(session: Session, parent: LockedInstance, event: SubOrchestrationCreated) -> NewChild | None:
    """Create the child instance; None if its id is taken, and then the parent's task has failed (wake
    the parent). The child's start is left to the caller, which posts it to the inbox or runs the child's
    first step with it."""
    execution_id = ids.new_execution_id()
    values = {
        "taskhub": parent.taskhub,
        "instance_id": event.instance_id,
        "name": event.name,
        "execution_id": execution_id,
        "input": event.input,
        "parent_instance_id": parent.instance_id,
        "parent_execution_id": parent.execution_id,
        "parent_task_id": event.task_id,
        "tags": event.tags,
        "version": event.version or parent.version,
    }
    created = session.execute(_create_child_statement(dialect.of(session).name), values).first()
    if created is None:
        existing = session.scalar(
            select(Instance.status).where(Instance.taskhub == parent.taskhub, Instance.instance_id == event.instance_id)
        )
        fail_task_now(session, parent, event.task_id, InstanceExistsError(event.instance_id, existing or "unknown"))
        return None
    started = ExecutionStarted(
        name=event.name,
        input=event.input,
        execution_id=execution_id,
        parent_instance_id=parent.instance_id,
        version=values["version"],
    )
    return NewChild(dict(created._mapping), started)


@cache
def _create_child_statement(backend: str) -> Any:
    """The child's row, unless its id is taken, returned whole; built once."""
    return insert_new_instance(backend).returning(*instances_table.c)


def deliver_sent_events(session: Session, sender: LockedInstance, events: Sequence[EventSent]) -> Wakes:
    """Post each event the step sent to its target's inbox (starting the target first where asked)."""
    wakes: Wakes = []
    for event in events:
        if event.start_name is not None:
            ensure_started(
                session,
                taskhub=sender.taskhub,
                instance_id=event.instance_id,
                name=event.start_name,
                input=event.start_input,
                version=sender.version,
            )
        target = session.get(Instance, (sender.taskhub, event.instance_id))
        if target is None or target.status in TERMINAL:
            log.warning(
                "event %r from %s to %s dropped: no such running instance",
                event.name,
                sender.instance_id,
                event.instance_id,
            )
            continue
        inbox.post(
            session,
            sender.taskhub,
            event.instance_id,
            EventRaised(name=event.name, data=event.data),
            dedupe_key=ids.sent_event_key(sender.instance_id, sender.execution_id, event.task_id),
        )
        wakes.append(event.instance_id)
    return wakes


def cancel_tasks(
    session: Session,
    writes: StepWrites,
    instance: LockedInstance,
    cancels: Sequence[TaskCancelled],
    *,
    drop_pending: bool,
) -> Wakes:
    """Drop what cancelled tasks left pending: their timers and work items (with `drop_pending`; an
    instance that ends in this step drops all of its own) and, for sub-orchestrations, the child itself,
    which is terminated. An activity already running is not interrupted; its outcome will be stale."""
    targets = [event.target_task_id for event in cancels if event.target_task_id is not None]
    if drop_pending and targets:
        where = {
            "taskhub": instance.taskhub,
            "instance_id": instance.instance_id,
            "execution_id": instance.execution_id,
            "task_id": targets,
        }
        writes.delete(timers_table, where)
        writes.delete(work_items_table, where)
    children = [event.instance_id for event in cancels if event.instance_id is not None]
    for child in children:
        reason = f"cancelled by orchestration {instance.instance_id!r}"
        inbox.post(session, instance.taskhub, child, ExecutionTerminated(output=reason))
    return children


def finish(
    writes: StepWrites, instance: LockedInstance, now: datetime, output: Json, failure: FailureDetails | None
) -> Wakes:
    """The execution completed with `output`, or failed with `failure`; its parent, if any, hears it."""
    instance.completed_at = now
    done: HistoryEvent
    if failure is None:
        instance.status = "COMPLETED"
        instance.output = output
        done = SubOrchestrationCompleted(task_id=instance.parent_task_id or 0, result=output)
    else:
        instance.status = "FAILED"
        instance.failure = failure.to_json()
        done = SubOrchestrationFailed(task_id=instance.parent_task_id or 0, failure=FailureInfo.of(failure))
    _drop_pending_work(writes, instance)
    return _notify_parent(writes, instance, done)


def continue_as_new(
    writes: StepWrites, instance: LockedInstance, new_input: Json, carried: Sequence[EventRaised]
) -> list[Delivery]:
    """Start a new execution in place: fresh history, the new input. Returns its start and the
    unconsumed events carried over, for the caller to deliver."""
    _drop_pending_work(writes, instance)
    writes.delete(history_table, {"taskhub": instance.taskhub, "instance_id": instance.instance_id})
    instance.execution_id = ids.new_execution_id()
    instance.history_length = 0
    instance.input = new_input
    instance.output = None
    instance.status = "CONTINUED_AS_NEW"
    start = ExecutionStarted(
        name=instance.name, input=new_input, execution_id=instance.execution_id, version=instance.version
    )
    return [(instance.execution_id, start), *((None, event) for event in carried)]


def terminate(
    session: Session, writes: StepWrites, instance: LockedInstance, event: ExecutionTerminated, now: datetime
) -> Wakes:
    """End the instance as TERMINATED and ask its running children to stop too."""
    session.execute(
        delete(InboxRow).where(InboxRow.taskhub == instance.taskhub, InboxRow.instance_id == instance.instance_id)
    )
    if instance.history_length:
        append_history(writes, instance, [event_to_json(StepStarted(timestamp=now)), event_to_json(event)])
    instance.status = "TERMINATED"
    instance.output = event.output
    instance.completed_at = now
    instance.updated_at = now
    _drop_pending_work(writes, instance)
    children = session.scalars(
        select(Instance.instance_id).where(
            Instance.taskhub == instance.taskhub,
            Instance.parent_instance_id == instance.instance_id,
            Instance.status.not_in(TERMINAL),
        )
    ).all()
    for child in children:
        inbox.post(session, instance.taskhub, child, ExecutionTerminated(output=event.output))
    failure = FailureDetails("TerminatedError", f"sub-orchestration {instance.instance_id!r} was terminated")
    parent = _notify_parent(
        writes, instance, SubOrchestrationFailed(task_id=instance.parent_task_id or 0, failure=FailureInfo.of(failure))
    )
    instance.announce()
    # Entities it holds locked would wait for a release that can no longer come.
    released = entities.release_locks_of(session, instance.taskhub, instance.instance_id)
    return [*children, *parent, *released]


def _notify_parent(writes: StepWrites, instance: LockedInstance, event: HistoryEvent) -> Wakes:
    if instance.parent_instance_id is None or instance.parent_execution_id is None:
        return []
    row = {
        "taskhub": instance.taskhub,
        "instance_id": instance.parent_instance_id,
        "execution_id": instance.parent_execution_id,
        "dedupe_key": ids.sub_orchestration_key(instance.parent_execution_id, instance.parent_task_id),
        "event": event_to_json(event),
    }
    # Posted once, and only to a parent that has not been purged meanwhile.
    writes.insert(inbox_table, [row], skip_conflicts_on=inbox.DEDUPE_KEY, for_existing_instances=True)
    return [instance.parent_instance_id]


def _drop_pending_work(writes: StepWrites, instance: LockedInstance) -> None:
    """An ended instance needs no more activities or timers; late results are discarded on arrival.

    Never in a step that also adds work items or timers: its writes share one snapshot (see `StepWrites`)."""
    for table in (work_items_table, timers_table):
        writes.delete(table, {"taskhub": instance.taskhub, "instance_id": instance.instance_id})
