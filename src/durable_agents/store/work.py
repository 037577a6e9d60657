"""Activity work items: claiming under a lease, renewing it, and recording the result once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, or_, select, update
from sqlalchemy.orm import Session

from ..models import WorkItem, work_items_table
from ..orchestrator.history import TaskCompleted, TaskFailed
from . import dialect, inbox


def claim(session: Session, taskhub: str, item_id: int, owner: str, lease_seconds: float) -> WorkItem | None:
    """Take the item if it is pending or its lease has expired; None if someone else holds it or it is done."""
    items = work_items_table.c
    now = dialect.clock(session)
    return _lease(session, (items.id == item_id, items.taskhub == taskhub, _claimable(now)), owner, lease_seconds)


def claim_next(
    session: Session, taskhub: str, item_ids: Sequence[int], owner: str, lease_seconds: float
) -> WorkItem | None:
    """Take the first claimable item of `item_ids`, passing over those another claimer has locked this
    moment; None once every one is done or leased."""
    items = work_items_table.c
    now = dialect.clock(session)
    candidate = (
        select(items.id)
        .where(items.id.in_(item_ids), items.taskhub == taskhub, _claimable(now))
        .order_by(items.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return _lease(session, (items.id == candidate,), owner, lease_seconds)


def _claimable(now: ColumnElement[datetime] | datetime) -> ColumnElement[bool]:
    items = work_items_table.c
    return or_(items.status == "pending", items.lease_expires_at < now)


def _lease(
    session: Session, where: tuple[ColumnElement[bool], ...], owner: str, lease_seconds: float
) -> WorkItem | None:
    items = work_items_table.c
    claimed = session.execute(
        update(work_items_table)
        .where(*where)
        .values(
            status="running",
            lease_owner=owner,
            lease_expires_at=dialect.clock(session) + timedelta(seconds=lease_seconds),
            attempts=items.attempts + 1,
        )
        .returning(*items)
    ).one_or_none()
    # A detached copy: the caller only reads it, and the ORM's identity map would cost more than it gives.
    return None if claimed is None else WorkItem(**claimed._mapping)


def renew(session: Session, item_id: int, owner: str, lease_seconds: float) -> bool:
    """Extend our lease; False if it was lost (expired and taken over, or the item is gone)."""
    items = work_items_table.c
    result = session.execute(
        update(work_items_table)
        .where(items.id == item_id, items.lease_owner == owner)
        .values(lease_expires_at=dialect.clock(session) + timedelta(seconds=lease_seconds))
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def complete(session: Session, item: WorkItem, event: TaskCompleted | TaskFailed) -> None:
    """Record the outcome under the task's unique key (a second completion changes nothing)."""
    inbox.post(
        session,
        item.taskhub,
        item.instance_id,
        event,
        execution_id=item.execution_id,
        dedupe_key=inbox.task_key(item.execution_id, item.task_id),
    )
    session.execute(delete(work_items_table).where(work_items_table.c.id == item.id))
