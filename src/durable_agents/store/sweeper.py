"""The sweep: fire due timers, re-dispatch work whose message was lost or whose lease expired."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import case, delete, exists, or_, select, update
from sqlalchemy.orm import Session

from .. import ids
from ..models import InboxRow, Instance, Timer, WorkItem
from ..orchestrator.history import ExecutionStarted, TimerFired
from . import dialect, holders, inbox

BATCH = 1000


@dataclass
class Swept:
    """What a sweep found to dispatch again, to publish once its transaction commits."""

    #: (work item id, activity name): lost messages and expired leases.
    activities: list[tuple[int, str]] = field(default_factory=list)
    #: Instances to wake: timers fired, or inbox events waiting too long.
    steps: list[str] = field(default_factory=list)


def sweep(session: Session, taskhub: str, redispatch_after: float, *, free_dead_holders: bool = True) -> Swept:
    """One sweep of a task hub. Only one sweeper per hub works at a time (an advisory lock).

    With `free_dead_holders`, the leases of processes whose heartbeat stopped are freed (see `holders`);
    a sweeper that has not itself reached the database for long enough to judge passes False."""
    swept = Swept()
    database = dialect.of(session)
    if not database.try_exclusive(session, f"durable_agents.sweep/{taskhub}"):
        return swept
    now = database.current_time(session)
    swept.steps += _fire_timers(session, taskhub)
    if free_dead_holders:
        swept.activities += holders.free_dead(session, taskhub, now)
    stale = now - timedelta(seconds=redispatch_after)
    swept.activities += _lost_work(session, taskhub, now, stale)
    swept.steps += _waiting_instances(session, taskhub, now, stale)
    return swept


def _lost_work(session: Session, taskhub: str, now: datetime, stale: datetime) -> list[tuple[int, str]]:
    """Work items whose message went unanswered for `redispatch_after`, or whose lease expired; each is
    sent again at most once per `redispatch_after` (the send is recorded), so a queue that falls behind
    does not fill with copies."""
    items = WorkItem.__table__.c
    lost = session.execute(
        update(WorkItem)
        .where(
            items.taskhub == taskhub,
            or_(
                (items.status == "pending") & (items.dispatched_at < stale),
                (items.status == "running")
                & (items.lease_expires_at < now)
                # Not sent since the lease expired (the last send predates it), or not for a while.
                & ((items.dispatched_at < items.lease_expires_at) | (items.dispatched_at < stale)),
            ),
        )
        .values(dispatched_at=now)
        .returning(items.id, items.name)
    ).all()
    return [(item_id, name) for item_id, name in lost]


def _waiting_instances(session: Session, taskhub: str, now: datetime, stale: datetime) -> list[str]:
    """Instances with events waiting in their inbox for `redispatch_after` (their wake-up was lost, or is
    stuck in a queue that fell behind): each is woken at most once per `redispatch_after`."""
    waiting = exists().where(
        InboxRow.taskhub == Instance.taskhub, InboxRow.instance_id == Instance.instance_id, InboxRow.created_at < stale
    )
    due = session.scalars(
        select(Instance.instance_id)
        .where(
            Instance.taskhub == taskhub,
            Instance.status != "SUSPENDED",
            or_(Instance.scheduled_start_at.is_(None), Instance.scheduled_start_at <= now),
            or_(Instance.woken_at.is_(None), Instance.woken_at < stale),
            waiting,
        )
        .limit(BATCH)
        # An instance a step holds is being stepped: it needs no wake-up, and the sweep need not wait.
        .with_for_update(skip_locked=True)
    ).all()
    if due:
        session.execute(
            update(Instance).where(Instance.taskhub == taskhub, Instance.instance_id.in_(due)).values(woken_at=now)
        )
    return list(due)


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
                    ExecutionStarted(
                        name=instance.name,
                        input=instance.input,
                        execution_id=instance.execution_id,
                        version=instance.version,
                    ),
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
