"""Activity work items: claiming under a lease, renewing it, and recording the result once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import CTE, Delete, Insert, delete, or_, update
from sqlalchemy.orm import Session

from .. import ids
from ..models import WorkItem, work_items_table
from ..orchestrator.history import TaskCompleted, TaskFailed
from . import dialect, inbox
from .db import single_statement, transaction

#: An activity's work item and its outcome, not yet recorded.
Completion = tuple[WorkItem, TaskCompleted | TaskFailed]


def claim(
    session: Session,
    taskhub: str,
    item_id: int,
    owner: str,
    lease_seconds: float,
    *,
    recording: Completion | None = None,
) -> WorkItem | None:
    """Take the item if it is pending or its lease has expired; None if someone else holds it or it is done.

    With `recording`, the outcome of another item is recorded first, as `complete()` does: on PostgreSQL
    in the same statement (its CTEs write the outcome), which is atomic on its own and so needs no
    transaction: one round trip where a transaction of its own would take five.
    """
    items = work_items_table.c
    ctes: list[CTE] = []
    if recording is not None:
        done, event = recording
        if dialect.of(session).writes_in_one_statement:
            ctes = [_record_statement(session, done, event).cte("recorded"), _delete_statement(done).cte("deleted")]
        else:
            complete(session, done, event)
    claimed = session.execute(
        update(work_items_table)
        .add_cte(*ctes)
        .where(
            items.id == item_id,
            items.taskhub == taskhub,
            or_(items.status == "pending", items.lease_expires_at < dialect.of(session).clock()),
        )
        .values(
            status="running",
            lease_owner=owner,
            lease_expires_at=dialect.of(session).clock() + timedelta(seconds=lease_seconds),
            attempts=items.attempts + 1,
        )
        .returning(*items)
    ).one_or_none()
    # A detached copy: the caller only reads it, and the ORM's identity map would cost more than it gives.
    return None if claimed is None else WorkItem(**claimed._mapping)


def claim_recording(
    database_url: str, taskhub: str, item_id: int, owner: str, lease_seconds: float, recording: Completion | None
) -> WorkItem | None:
    """`claim(..., recording=recording)` in the cheapest scope the database allows: one statement
    without a transaction where it writes in one statement, a transaction of its own elsewhere (the
    outcome is then recorded by statements of its own, which must commit with the claim)."""
    scope = single_statement if dialect.for_url(database_url).writes_in_one_statement else transaction
    with scope(database_url) as session:
        return claim(session, taskhub, item_id, owner, lease_seconds, recording=recording)


def renew(session: Session, item_id: int, owner: str, lease_seconds: float) -> bool:
    """Extend our lease; False if it was lost (expired and taken over, or the item is gone)."""
    items = work_items_table.c
    result = session.execute(
        update(work_items_table)
        .where(items.id == item_id, items.lease_owner == owner)
        .values(lease_expires_at=dialect.of(session).clock() + timedelta(seconds=lease_seconds))
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def complete(session: Session, item: WorkItem, event: TaskCompleted | TaskFailed) -> None:
    """Record the outcome under the task's unique key (a second completion changes nothing)."""
    session.execute(_record_statement(session, item, event))
    session.execute(_delete_statement(item))


def _record_statement(session: Session, item: WorkItem, event: TaskCompleted | TaskFailed) -> Insert:
    return inbox.post_statement(
        session,
        item.taskhub,
        item.instance_id,
        event,
        execution_id=item.execution_id,
        dedupe_key=ids.task_key(item.execution_id, item.task_id),
    )


def _delete_statement(item: WorkItem) -> Delete:
    return delete(work_items_table).where(work_items_table.c.id == item.id)
