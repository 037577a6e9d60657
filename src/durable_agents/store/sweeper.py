"""The sweep: fire due timers, re-dispatch work whose message was lost or whose lease expired."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.orm import Session

from ..models import InboxRow, Instance, Timer, WorkItem
from ..orchestrator.history import ExecutionStarted, TimerFired
from . import dialect, inbox
from .steps import Dispatch

BATCH = 1000


def sweep(session: Session, taskhub: str, redispatch_after: float) -> Dispatch:
    """One sweep of a task hub. Only one sweeper per hub works at a time (an advisory lock)."""
    dispatch = Dispatch()
    if not dialect.try_exclusive(session, f"durable_agents.sweep/{taskhub}"):
        return dispatch
    now = dialect.current_time(session)
    _fire_timers(session, taskhub, dispatch)
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
    dispatch.activities.extend((item_id, name) for item_id, name in lost)
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
    dispatch.steps.extend(waiting)  # publish() sends each instance one wake-up, however often listed
    return dispatch


def _fire_timers(session: Session, taskhub: str, dispatch: Dispatch) -> None:
    # An event's own timeout fires after a timer set for the same moment, so in
    # task_any([event_with_timeout, timer]) the explicit timer wins the tie.
    due = session.scalars(
        select(Timer)
        .where(Timer.taskhub == taskhub, Timer.fire_at <= dialect.clock(session))
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
                    dedupe_key=f"start:{instance.execution_id}",
                )
        else:
            inbox.post(
                session,
                taskhub,
                timer.instance_id,
                TimerFired(task_id=timer.task_id, fire_at=timer.fire_at),
                execution_id=timer.execution_id,
                dedupe_key=f"timer:{timer.execution_id}:{timer.task_id}",
            )
        dispatch.steps.append(timer.instance_id)
    if due:
        session.execute(delete(Timer).where(Timer.id.in_([t.id for t in due])))
