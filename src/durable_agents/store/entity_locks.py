"""Entity locks taken and released by the step that asks, when the entity is idle: no message, no entity step.

The path through the entity's inbox (`steps/entity_sends` → `steps/entity_step`) costs the entity a step
for the lock and one for the release, and the holder a step more to learn the lock is granted. Most
locks find their entity idle (an agent session between turns, an account no one else is moving money
from), so the step that asks takes the lock itself, under the same row lock an entity step takes, and
only falls back to the message when the entity is busy.

Why it is safe:
- The entity's instance row is locked `FOR NO KEY UPDATE`, as its step locks it, so the two never
  interleave; `SKIP LOCKED` makes a busy entity a fallback rather than a wait, so a step holding its
  own row never waits on an entity step that may be posting to it (no cycle, hence no deadlock).
- A lock is taken only from an entity with nothing queued and nothing in its inbox: a request that
  arrived first (in the inbox, or held back in `queued`) is served first, as the message path would.
- A release is direct only while nothing waits in `queued`; messages that wait there are re-read by
  the entity's step, which only the message path's release (with its wake-up) starts.
PostgreSQL only: elsewhere (SQLite, one process) the message path is the only one.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import String, bindparam, delete, exists, func, literal_column, select, union_all, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnClause

from .. import ids
from ..ids import EntityId
from ..models import entities_table, entity_operations_table, inbox_table, instances_table
from . import dialect
from .entities import ENTITY_INSTANCE_NAME, RECENT_OPERATIONS

_NEW_ENTITY_COLUMNS = ("taskhub", "instance_id", "name", "key", "queued", "operation_count", "locked_by",
                       "lock_holder", "created_at", "updated_at")  # fmt: skip
_ZERO: ColumnClause[int] = literal_column("0")
_entities, _instances, _box, _operations = entities_table.c, instances_table.c, inbox_table.c, entity_operations_table.c


def lock_now(
    session: Session, taskhub: str, entities: Sequence[EntityId], lock_id: str, holder: str, *, record: bool = True
) -> bool:
    """Lock every one of `entities` (sorted) for critical section `lock_id` of instance `holder`, if each is
    idle; True if they are all locked now. False leaves them as they were, for the message path. `record`:
    add the lock to each entity's recent operations."""
    if not dialect.of(session).writes_in_one_statement:
        return False
    taken: list[EntityId] = []
    for entity in entities:
        params = {**_params(taskhub, entity), "p_execution_id": ids.new_execution_id(), "p_lock_id": lock_id}
        if not session.execute(_lock_statement(record), {**params, "p_holder": holder}).scalar_one():
            # Their row locks stay until the transaction ends; the lock itself goes back now.
            for locked in taken:
                params = {**_params(taskhub, locked), "p_lock_id": lock_id, "p_holder": holder}
                session.execute(_unlock_statement(record), params)
            return False
        taken.append(entity)
    return True


def unlock_now(
    session: Session, taskhub: str, entities: Sequence[EntityId], lock_id: str, holder: str, *, record: bool = True
) -> list[EntityId]:
    """Release `lock_id` (held by instance `holder`) on those of `entities` where nothing waits for it;
    returns the ones released (the others need the release message, whose step hands the lock on)."""
    if not dialect.of(session).writes_in_one_statement:
        return []
    return [
        entity
        for entity in entities
        if session.execute(
            _unlock_statement(record), {**_params(taskhub, entity), "p_lock_id": lock_id, "p_holder": holder}
        ).scalar_one()
    ]


def _params(taskhub: str, entity: EntityId) -> dict[str, Any]:
    # Named apart from the columns: an UPDATE given parameters named after its table's columns sets them.
    return {"p_taskhub": taskhub, "p_instance_id": entity.instance_id, "p_name": entity.name, "p_key": entity.key}


def _idle_target() -> Any:
    """The entity's instance row, locked as its step locks it; no row if a step (or another holder) has it."""
    return (
        select(_instances.instance_id)
        .where(_instances.taskhub == bindparam("p_taskhub"), _instances.instance_id == bindparam("p_instance_id"))
        .with_for_update(key_share=True, skip_locked=True)
        .cte("target")
    )


def _of_target(target: Any) -> Any:
    return (_entities.taskhub == bindparam("p_taskhub")) & _entities.instance_id.in_(select(target.c.instance_id))


def _recorded(changed: Any, kind: str) -> tuple[Any, Any]:
    """The operation record of a lock or release (`changed`: the entity's id if it happened), and the trim
    that keeps the entity's last `RECENT_OPERATIONS` records. The trim shares the statement's snapshot, so
    it keeps one fewer old record, and the new one makes up the number."""
    of_entity = (_operations.taskhub == bindparam("p_taskhub")) & (
        _operations.instance_id == bindparam("p_instance_id")
    )
    record = (
        postgresql.insert(entity_operations_table)
        .from_select(
            ["taskhub", "instance_id", "kind", "operation", "caller", "applied_at"],
            select(
                bindparam("p_taskhub", type_=_operations.taskhub.type),
                changed.c.instance_id,
                literal_column(f"'{kind}'", String()),
                literal_column(f"'{kind}'", String()),
                bindparam("p_holder", type_=_operations.caller.type),
                func.clock_timestamp(),
            ),
        )
        .returning(_operations.id)
        .cte(f"{kind}_record")
    )
    kept = (
        select(_operations.id)
        .where(of_entity)
        .order_by(_operations.id.desc())
        .limit(literal_column(str(RECENT_OPERATIONS - 1)))
        .subquery()
    )
    trim = (
        delete(entity_operations_table)
        .where(of_entity, _operations.id < select(func.min(kept.c.id)).scalar_subquery())
        .where(exists(select(record.c.id)))
        .cte(f"{kind}_trim")
    )
    return record, trim


@cache
def _lock_statement(record: bool) -> Select[tuple[int]]:
    """One round trip: a new entity is created locked, an idle one is locked, and either is recorded. Its
    parts share one snapshot, so an entity this statement creates is not also locked by its update."""
    now = func.clock_timestamp()
    new_instance = (
        postgresql.insert(instances_table)
        .values(
            taskhub=bindparam("p_taskhub"),
            instance_id=bindparam("p_instance_id"),
            name=literal_column(f"'{ENTITY_INSTANCE_NAME}'", String()),
            execution_id=bindparam("p_execution_id"),
            status=literal_column("'RUNNING'", String()),
            history_length=literal_column("0"),
        )
        .on_conflict_do_nothing(index_elements=["taskhub", "instance_id"])
        .returning(_instances.instance_id)
        .cte("new_instance")
    )
    new_entity = (
        postgresql.insert(entities_table)
        .from_select(
            [*_NEW_ENTITY_COLUMNS],
            select(
                bindparam("p_taskhub", type_=_entities.taskhub.type),
                new_instance.c.instance_id,
                bindparam("p_name", type_=_entities.name.type),
                bindparam("p_key", type_=_entities.key.type),
                func.jsonb_build_array(),
                literal_column("0"),
                bindparam("p_lock_id", type_=_entities.locked_by.type),
                bindparam("p_holder", type_=_entities.lock_holder.type),
                now,
                now,
            ),
        )
        .on_conflict_do_nothing(index_elements=["taskhub", "instance_id"])
        .returning(_entities.instance_id)
        .cte("new_entity")
    )
    target = _idle_target()
    waiting = exists().where(_box.taskhub == bindparam("p_taskhub"), _box.instance_id == bindparam("p_instance_id"))
    taken = (
        update(entities_table)
        .where(_of_target(target), _entities.locked_by.is_(None))
        .where(func.jsonb_array_length(_entities.queued) == _ZERO)
        .where(~waiting)
        .values(locked_by=bindparam("p_lock_id"), lock_holder=bindparam("p_holder"), updated_at=now)
        .returning(_entities.instance_id)
        .cte("taken")
    )
    locked = union_all(select(new_entity.c.instance_id), select(taken.c.instance_id)).cte("locked")
    statement = select(select(func.count()).select_from(locked).scalar_subquery())
    return statement.add_cte(*_recorded(locked, "lock")) if record else statement


@cache
def _unlock_statement(record: bool) -> Select[tuple[int]]:
    target = _idle_target()
    released = (
        update(entities_table)
        .where(_of_target(target), _entities.locked_by == bindparam("p_lock_id"))
        .where(func.jsonb_array_length(_entities.queued) == _ZERO)
        .values(locked_by=None, lock_holder=None, updated_at=func.clock_timestamp())
        .returning(_entities.instance_id)
        .cte("released")
    )
    statement = select(select(func.count()).select_from(released).scalar_subquery())
    return statement.add_cte(*_recorded(released, "unlock")) if record else statement
