"""The sweep: fire due timers, re-dispatch work whose message was lost or whose lease expired."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.orm import Session

from .. import ids
from ..models import InboxRow, Instance, Timer, WorkItem
from ..orchestrator.history import ExecutionStarted, TimerFired
from . import dialect, inbox

BATCH = 1000


@dataclass
class Swept:
    """What a sweep found to dispatch again, to publish once its transaction commits."""

    #: (work item id, activity name): lost messages and expired leases.
    activities: list[tuple[int, str]] = field(default_factory=list)
    #: Instances to wake: timers fired, or inbox events waiting too long.
    steps: list[str] = field(default_factory=list)


def sweep(session: Session, taskhub: str, redispatch_after: float) -> Swept:
    """One sweep of a task hub. Only one sweeper per hub works at a time (an advisory lock)."""
    swept = Swept()
    database = dialect.of(session)
    if not database.try_exclusive(session, f"durable_agents.sweep/{taskhub}"):
        return swept
    now = database.current_time(session)
    swept.steps += _fire_timers(session, taskhub)
    stale = now - timedelta(seconds=redispatch_after)
    lost = session.execute(
        update(WorkItem)
        .where(
            WorkItem.taskhub == taskhub,
            or_(
                (WorkItem.status == "pending") & (WorkItem.dispatched_at < stale),
                (WorkItem.status == "running") & (WorkItem.lease_expires_at < now),
            ),
        )
        .values(dispatched_at=now)
        .returning(WorkItem.id, WorkItem.name)
    ).all()
    swept.activities.extend((item_id, name) for item_id, name in lost)
    waiting = session.scalars(
        select(InboxRow.instance_id)
        .join(Instance, (Instance.taskhub == InboxRow.taskhub) & (Instance.instance_id == InboxRow.instance_id))
        .where(
            InboxRow.taskhub == taskhub,
            InboxRow.created_at < stale,
            Instance.status != "SUSPENDED",
            or_(Instance.scheduled_start_at.is_(None), Instance.scheduled_start_at <= now),
        )
        .distinct()
        .limit(BATCH)
    ).all()
    swept.steps.extend(waiting)  # publish() sends each instance one wake-up, however often listed
    return swept


def _fire_timers(session: Session, taskhub: str) -> list[str]:
    """Turn due timers into inbox events; the instances to wake."""
    # An event's own timeout fires after a timer set for the same moment, so in
    # task_any([event_with_timeout, timer]) the explicit timer wins the tie.
    due = session.scalars(
        select(Timer)
        .where(Timer.taskhub == taskhub, Timer.fire_at <= dialect.of(session).clock())
        .order_by(Timer.fire_at, case((Timer.purpose == "event_timeout", 1), else_=0), Timer.id)
        .limit(BATCH)
        .with_for_update(skip_locked=True)
    ).all()
    for timer in due:
        if timer.purpose == "start":
            instance = session.get(Instance, (taskhub, timer.instance_id))
            if instance is not None:
                inbox.post(
                    session,
                    taskhub,
                    timer.instance_id,
                    ExecutionStarted(name=instance.name, input=instance.input, execution_id=instance.execution_id),
                    execution_id=instance.execution_id,
                    dedupe_key=ids.start_key(instance.execution_id),
                )
        else:
            inbox.post(
                session,
                taskhub,
                timer.instance_id,
                TimerFired(task_id=timer.task_id, fire_at=timer.fire_at),
                execution_id=timer.execution_id,
                dedupe_key=ids.timer_key(timer.execution_id, timer.task_id),
            )
    if due:
        session.execute(delete(Timer).where(Timer.id.in_([t.id for t in due])))
    return [timer.instance_id for timer in due]
