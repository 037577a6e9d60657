"""What the store knows about why an instance waits: its inbox, work items, timers, history and the live workers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from ..models import HistoryRow, InboxRow, Instance, Timer, WorkItem
from ..orchestrator.history import HistoryEvent, event_from_json
from . import dialect, workers
from .instances import require
from .workers import WorkerInfo


@dataclass(frozen=True)
class WorkItemFact:
    task_id: int
    name: str
    status: str
    attempts: int
    created_at: datetime
    lease_owner: str | None
    lease_expires_at: datetime | None


@dataclass(frozen=True)
class TimerFact:
    task_id: int
    fire_at: datetime
    purpose: str


@dataclass(frozen=True)
class InstanceFacts:
    taskhub: str
    instance_id: str
    name: str
    status: str
    scheduled_start_at: datetime | None
    updated_at: datetime
    now: datetime
    #: When the oldest event not yet taken by a step arrived, and how many wait.
    inbox_since: datetime | None
    inbox_count: int
    work_items: list[WorkItemFact]
    timers: list[TimerFact]
    #: The current execution's history with the moment each event was recorded.
    history: list[tuple[HistoryEvent, datetime]]
    live_workers: list[WorkerInfo]
    #: The instance's orchestration version (None: unversioned).
    version: str | None = None


def gather(session: Session, taskhub: str, instance_id: str) -> InstanceFacts:
    """Read everything a diagnosis needs in one transaction; raises InstanceNotFoundError if unknown."""
    if dialect.of(session).writes_in_one_statement:
        # One snapshot for every read (PostgreSQL's default gives each statement its own): otherwise a step
        # committing between two reads shows its history beside the status and inbox from before it.
        session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
    instance: Instance = require(session, taskhub, instance_id)
    now = dialect.of(session).current_time(session)
    inbox_since, inbox_count = session.execute(
        select(func.min(InboxRow.created_at), func.count()).where(
            InboxRow.taskhub == taskhub, InboxRow.instance_id == instance_id
        )
    ).one()
    items = session.scalars(
        select(WorkItem)
        .where(
            WorkItem.taskhub == taskhub,
            WorkItem.instance_id == instance_id,
            WorkItem.execution_id == instance.execution_id,
        )
        .order_by(WorkItem.task_id)
    ).all()
    timers = session.scalars(
        select(Timer)
        .where(Timer.taskhub == taskhub, Timer.instance_id == instance_id, Timer.execution_id == instance.execution_id)
        .order_by(Timer.fire_at, Timer.id)
    ).all()
    history = session.execute(
        select(HistoryRow.event, HistoryRow.created_at)
        .where(HistoryRow.taskhub == taskhub, HistoryRow.instance_id == instance_id)
        .order_by(HistoryRow.seq)
    ).all()
    return InstanceFacts(
        taskhub=taskhub,
        instance_id=instance_id,
        name=instance.name,
        status=instance.status,
        scheduled_start_at=instance.scheduled_start_at,
        updated_at=instance.updated_at,
        now=now,
        inbox_since=inbox_since,
        inbox_count=int(inbox_count),
        work_items=[
            WorkItemFact(i.task_id, i.name, i.status, i.attempts, i.created_at, i.lease_owner, i.lease_expires_at)
            for i in items
        ],
        timers=[TimerFact(t.task_id, t.fire_at, t.purpose) for t in timers],
        history=[(event_from_json(event), recorded) for event, recorded in history],
        live_workers=workers.listing(session, taskhub),
        version=instance.version,
    )
