"""Entities in the store: each is an instance (whose inbox holds its operations) and a row with its state.

Runs no user code: the entity step (`steps/entity_step`) applies operations and hands the outcome here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from .. import ids
from ..ids import EntityId
from ..models import entities_table, entity_operations_table, inbox_table, instances_table
from ..orchestrator.history import EntityMessage, EntityUnlock, HistoryEvent
from ..state import TERMINAL
from . import dialect, inbox

#: The name of every entity's instance; lists leave entities out by their id's prefix (`ids.ENTITY_PREFIX`).
ENTITY_INSTANCE_NAME = "durable_agents.entity"
#: How many of its last operations each entity keeps for the dashboard and `entities show`.
RECENT_OPERATIONS = 20

_entities = entities_table.c
_operations = entity_operations_table.c


@dataclass(frozen=True)
class EntityOperationRecord:
    """One operation an entity applied (or a lock it granted or released)."""

    kind: str
    operation: str
    caller: str | None
    input: Any
    result: Any
    failure: dict[str, Any] | None
    applied_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "applied_at": self.applied_at.isoformat()}


@dataclass(frozen=True)
class EntityState:
    """A stored entity: its state, who holds its lock, and (from `get_entity`) its last operations."""

    entity_id: EntityId
    state: Any
    locked_by: str | None
    waiting: int
    operation_count: int
    created_at: datetime
    updated_at: datetime
    recent_operations: list[EntityOperationRecord]

    def to_json(self) -> dict[str, Any]:
        return {
            "entity_id": str(self.entity_id),
            "name": self.entity_id.name,
            "key": self.entity_id.key,
            "state": self.state,
            "locked_by": self.locked_by,
            "waiting": self.waiting,
            "operation_count": self.operation_count,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "recent_operations": [operation.to_json() for operation in self.recent_operations],
        }


@dataclass
class LoadedEntity:
    """The entity row a step holds (under its instance's lock), as the step changes it."""

    state: Any
    locked_by: str | None
    lock_holder: str | None
    queued: list[dict[str, Any]]
    operation_count: int


def post(
    session: Session,
    taskhub: str,
    entity: EntityId,
    message: EntityMessage,
    *,
    dedupe_key: str | None = None,
    ensured: set[EntityId] | None = None,
) -> None:
    """Put `message` in the entity's inbox, creating the entity first if it has never been addressed.

    `ensured`: the entities this transaction has created or found already, which need no second look."""
    if ensured is None or entity not in ensured:
        ensure(session, taskhub, entity)
        if ensured is not None:
            ensured.add(entity)
    inbox.post(session, taskhub, entity.instance_id, message, dedupe_key=dedupe_key)


def ensure(session: Session, taskhub: str, entity: EntityId) -> None:
    """The entity's instance and row, unless they exist already."""
    database = dialect.of(session)
    now = database.clock()
    instance_id = entity.instance_id
    session.execute(
        database.insert(instances_table)
        .values(
            taskhub=taskhub,
            instance_id=instance_id,
            name=ENTITY_INSTANCE_NAME,
            execution_id=ids.new_execution_id(),
            status="RUNNING",
            history_length=0,
        )
        .on_conflict_do_nothing(index_elements=["taskhub", "instance_id"])
    )
    session.execute(
        database.insert(entities_table)
        .values(
            taskhub=taskhub,
            instance_id=instance_id,
            name=entity.name,
            key=entity.key,
            queued=[],
            operation_count=0,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["taskhub", "instance_id"])
    )


def lock(session: Session, taskhub: str, instance_id: str) -> tuple[LoadedEntity, datetime] | None:
    """The entity, locked until the transaction ends, and the database's "now"; None if it does not exist.

    FOR NO KEY UPDATE, not FOR UPDATE: posting to the entity's inbox (whose foreign key takes a KEY SHARE
    lock on the instance) never waits for its step, so an entity never waits on a caller waiting on it."""
    database = dialect.of(session)
    locked = session.execute(
        select(instances_table.c.instance_id, database.clock_column().label("now"))
        .where(instances_table.c.taskhub == taskhub, instances_table.c.instance_id == instance_id)
        .with_for_update(key_share=True),
        database.clock_parameters(),
    ).first()
    if locked is None:
        return None
    row = session.execute(
        select(entities_table).where(_entities.taskhub == taskhub, _entities.instance_id == instance_id)
    ).first()
    if row is None:
        return None
    loaded = LoadedEntity(row.state, row.locked_by, row.lock_holder, list(row.queued or []), row.operation_count)
    now: datetime = locked.now
    return loaded, now


def save_step(
    session: Session,
    taskhub: str,
    instance_id: str,
    consumed: list[int],
    entity: LoadedEntity,
    applied: int,
    records: Sequence[dict[str, Any]],
    now: datetime,
) -> None:
    """Write what an entity's step decided: the inbox rows it consumed go, its row changes (the state only
    if an operation succeeded), and its new operations join the last few kept."""
    session.execute(delete(inbox_table).where(inbox_table.c.id.in_(consumed)))
    _save(session, taskhub, instance_id, entity, applied, now)
    _record_operations(session, taskhub, instance_id, records)


def _save(session: Session, taskhub: str, instance_id: str, entity: LoadedEntity, applied: int, now: datetime) -> None:
    values: dict[str, Any] = {
        "locked_by": entity.locked_by,
        "lock_holder": entity.lock_holder,
        "queued": entity.queued,
        "operation_count": entity.operation_count,
        "updated_at": now,
    }
    if applied:
        values["state"] = entity.state
    session.execute(
        update(entities_table).where(_entities.taskhub == taskhub, _entities.instance_id == instance_id).values(values)
    )


def _record_operations(session: Session, taskhub: str, instance_id: str, records: Sequence[dict[str, Any]]) -> None:
    """Keep the last `RECENT_OPERATIONS` of the entity's operations, these the newest."""
    if not records:
        return
    newest = [{"taskhub": taskhub, "instance_id": instance_id, **record} for record in records[-RECENT_OPERATIONS:]]
    session.execute(entity_operations_table.insert(), newest)
    of_entity = (_operations.taskhub == taskhub) & (_operations.instance_id == instance_id)
    kept = select(_operations.id).where(of_entity).order_by(_operations.id.desc()).limit(RECENT_OPERATIONS).subquery()
    oldest_kept = select(func.min(kept.c.id)).scalar_subquery()
    session.execute(delete(entity_operations_table).where(of_entity, _operations.id < oldest_kept))


def live_execution(session: Session, taskhub: str, instance_id: str) -> str | None:
    """The execution the instance runs now; None if it has ended or does not exist."""
    row = session.execute(
        select(instances_table.c.status, instances_table.c.execution_id).where(
            instances_table.c.taskhub == taskhub, instances_table.c.instance_id == instance_id
        )
    ).first()
    if row is None or row.status in TERMINAL:
        return None
    execution: str = row.execution_id
    return execution


def release_locks_of(session: Session, taskhub: str, holder_instance_id: str) -> list[str]:
    """Release every entity `holder_instance_id` holds locked (it was terminated); the entities to wake."""
    held = session.execute(
        select(_entities.instance_id, _entities.locked_by).where(
            _entities.taskhub == taskhub, _entities.lock_holder == holder_instance_id
        )
    ).all()
    for instance_id, lock_id in held:
        unlock: HistoryEvent = EntityUnlock(lock_id=lock_id)
        # A second release of a lock the entity no longer holds is dropped there: no dedupe key needed.
        inbox.post(session, taskhub, instance_id, unlock)
    return [instance_id for instance_id, _ in held]


def get(session: Session, taskhub: str, entity: EntityId) -> EntityState | None:
    row = session.execute(
        select(entities_table).where(_entities.taskhub == taskhub, _entities.instance_id == entity.instance_id)
    ).first()
    if row is None:
        return None
    operations = session.execute(
        select(entity_operations_table)
        .where(_operations.taskhub == taskhub, _operations.instance_id == entity.instance_id)
        .order_by(_operations.id.desc())
        .limit(RECENT_OPERATIONS)
    ).all()
    recent = [
        EntityOperationRecord(op.kind, op.operation, op.caller, op.input, op.result, op.failure, op.applied_at)
        for op in operations
    ]
    return _state(row, recent)


def listing(
    session: Session,
    taskhub: str,
    *,
    name: str | None = None,
    key_prefix: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[EntityState]:
    """Entities of the task hub by name and key, without their operations."""
    statement = select(entities_table).where(_entities.taskhub == taskhub)
    if name:
        statement = statement.where(_entities.name == name)
    if key_prefix:
        statement = statement.where(_entities.key.startswith(key_prefix, autoescape=True))
    statement = statement.order_by(_entities.name, _entities.key).limit(limit).offset(offset)
    return [_state(row, []) for row in session.execute(statement)]


def _state(row: Any, recent: list[EntityOperationRecord]) -> EntityState:
    return EntityState(
        entity_id=EntityId(row.name, row.key),
        state=row.state,
        locked_by=row.lock_holder,
        waiting=len(row.queued or []),
        operation_count=row.operation_count,
        created_at=row.created_at,
        updated_at=row.updated_at,
        recent_operations=recent,
    )
