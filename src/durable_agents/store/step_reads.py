"""What a step reads: its instance's row, locked, then the inbox, the work item it completes, and history.

The statements are built once, from bind parameters, so that SQLAlchemy neither rebuilds nor
re-keys them on every step.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING

from sqlalchemy import Select, and_, bindparam, delete, func, select
from sqlalchemy.orm import Session

from ..models import WorkItem, history_table, inbox_table, instances_table, work_items_table
from ..orchestrator.history import HistoryEvent, event_from_json
from . import dialect

if TYPE_CHECKING:
    from sqlalchemy.sql.dml import ReturningDelete

    from .writes import AnyRow

#: Inbox rows as a step reads them: id, execution id, event.
InboxRows = Sequence["AnyRow"]

_box = inbox_table.c
_items = work_items_table.c
_instances = instances_table.c


def lock_instance(session: Session, taskhub: str, instance_id: str) -> AnyRow | None:
    """The instance's row, locked until the transaction ends, with the database's "now" as `now`."""
    database = dialect.of(session)
    params = {"taskhub": taskhub, "instance_id": instance_id, **database.clock_parameters()}
    return session.execute(_lock_statement(database), params).one_or_none()


@cache
def _lock_statement(database: dialect.Dialect) -> Select[*tuple[object, ...]]:
    now = database.clock_column().label("now")
    return (
        select(instances_table, now)
        .where(_instances.taskhub == bindparam("taskhub"), _instances.instance_id == bindparam("instance_id"))
        .with_for_update()
    )


_READ_INBOX = (
    select(_box.id, _box.execution_id, _box.event)
    .where(_box.taskhub == bindparam("taskhub"), _box.instance_id == bindparam("instance_id"))
    .order_by(_box.id)
)

_TAKE: ReturningDelete[int] = (
    delete(work_items_table)
    .where(_items.id == bindparam("item_id"), _items.lease_owner == bindparam("lease_owner"))
    .returning(_items.id)
)


def _take_and_read_statement() -> Select[*tuple[object, ...]]:
    taken = _TAKE.cte("taken")
    taken_count = select(func.count().label("taken")).select_from(taken).subquery("taken_count")
    inbox_of_instance = and_(_box.taskhub == bindparam("taskhub"), _box.instance_id == bindparam("instance_id"))
    # Joined to the one row of the count, so that an empty inbox still answers whether the item was taken.
    return (
        select(taken_count.c.taken, _box.id, _box.execution_id, _box.event)
        .select_from(taken_count.outerjoin(inbox_table, inbox_of_instance))
        .order_by(_box.id)
    )


_TAKE_AND_READ_INBOX = _take_and_read_statement()


def read_inbox(session: Session, taskhub: str, instance_id: str) -> InboxRows:
    return session.execute(_READ_INBOX, {"taskhub": taskhub, "instance_id": instance_id}).all()


def take_leased_item(session: Session, item: WorkItem) -> bool:
    """Delete the work item if this worker's lease on it still holds."""
    return session.execute(_TAKE, {"item_id": item.id, "lease_owner": item.lease_owner}).first() is not None


def take_and_read_inbox(
    session: Session, taskhub: str, instance_id: str, item: WorkItem | None
) -> tuple[bool, InboxRows]:
    """Take `item` (see `take_leased_item`) and read the inbox; on PostgreSQL in one statement.

    Both must run after the instance's row lock: the inbox read must see every event committed before
    the lock was granted, which only a statement that starts after it does.
    """
    if item is None:
        return False, read_inbox(session, taskhub, instance_id)
    if not dialect.of(session).writes_in_one_statement:
        return take_leased_item(session, item), read_inbox(session, taskhub, instance_id)
    params = {"item_id": item.id, "lease_owner": item.lease_owner, "taskhub": taskhub, "instance_id": instance_id}
    rows = session.execute(_TAKE_AND_READ_INBOX, params).all()
    return rows[0].taken > 0, [row for row in rows if row.id is not None]


_READ_HISTORY = (
    select(history_table.c.event)
    .where(history_table.c.taskhub == bindparam("taskhub"), history_table.c.instance_id == bindparam("instance_id"))
    .order_by(history_table.c.seq)
)


def read_history(session: Session, taskhub: str, instance_id: str) -> list[HistoryEvent]:
    """The instance's stored history, in order, for an executor to replay."""
    stored = session.scalars(_READ_HISTORY, {"taskhub": taskhub, "instance_id": instance_id})
    return [event_from_json(event) for event in stored]
