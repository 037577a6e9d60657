"""Client-side instance operations: create, query, raise events, terminate, suspend, resume, purge."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Row, Select, String, bindparam, delete, func, insert, select
from sqlalchemy.orm import Session

from .. import ids
from ..errors import FailureDetails, InstanceExistsError, InstanceNotFoundError, InvalidInstanceStateError
from ..models import HistoryRow, Instance, Timer, inbox_table, instances_table
from ..orchestrator.history import (
    EventRaised,
    ExecutionResumed,
    ExecutionStarted,
    ExecutionSuspended,
    ExecutionTerminated,
    event_to_json,
)
from ..state import TERMINAL, OrchestrationState, OrchestrationStatus
from . import dialect, inbox


def to_state(row: Instance | Row[*tuple[Any, ...]]) -> OrchestrationState:
    """The state of the instance in `row`, an ORM object or a row of `da_instances`."""
    return OrchestrationState(
        instance_id=row.instance_id,
        name=row.name,
        taskhub=row.taskhub,
        runtime_status=OrchestrationStatus(row.status),
        created_at=row.created_at,
        last_updated_at=row.updated_at,
        completed_at=row.completed_at,
        input=row.input,
        output=row.output,
        custom_status=row.custom_status,
        failure_details=FailureDetails.from_json(row.failure) if row.failure else None,
        parent_instance_id=row.parent_instance_id,
        tags=dict(row.tags or {}),
        version=row.version,
    )


def create(
    session: Session,
    *,
    taskhub: str,
    instance_id: str,
    name: str,
    input: Any,
    start_at: datetime | None,
    reuse_id: bool,
    tags: dict[str, str] | None = None,
    version: str | None = None,
    trace_parent: str | None = None,
) -> bool:
    """Create the instance; True if it waits for `start_at`, False if it can start now. `trace_parent`
    (W3C traceparent) parents the spans of its steps."""
    existing = session.get(Instance, (taskhub, instance_id), with_for_update=True)
    if existing is not None and not (reuse_id and existing.status in TERMINAL):
        raise InstanceExistsError(instance_id, existing.status)
    return _start(
        session,
        existing,
        taskhub=taskhub,
        instance_id=instance_id,
        name=name,
        input=input,
        start_at=start_at,
        tags=tags,
        version=version,
        trace_parent=trace_parent,
    )


def _start(
    session: Session,
    replaced: Instance | None,
    *,
    taskhub: str,
    instance_id: str,
    name: str,
    input: Any,
    start_at: datetime | None,
    tags: dict[str, str] | None = None,
    version: str | None = None,
    trace_parent: str | None = None,
) -> bool:
    """Create the instance, replacing `replaced` (the finished instance under its id, locked) if given;
    True if it is scheduled for later."""
    if replaced is not None:
        session.delete(replaced)
        session.flush()
    # The clock is only read to tell a future start from one that is due already.
    scheduled = start_at if start_at is not None and start_at > dialect.of(session).current_time(session) else None
    execution_id = ids.new_execution_id()
    session.add(
        Instance(
            taskhub=taskhub,
            instance_id=instance_id,
            name=name,
            execution_id=execution_id,
            status="PENDING",
            input=input,
            history_length=0,
            scheduled_start_at=scheduled,
            tags=tags,
            version=version,
            trace_parent=trace_parent,
        )
    )
    session.flush()
    if scheduled is not None:
        session.add(
            Timer(
                taskhub=taskhub,
                instance_id=instance_id,
                execution_id=execution_id,
                task_id=0,
                fire_at=scheduled,
                purpose="start",
            )
        )
    else:
        inbox.post(
            session,
            taskhub,
            instance_id,
            ExecutionStarted(name=name, input=input, execution_id=execution_id, version=version),
            execution_id=execution_id,
            dedupe_key=ids.start_key(execution_id),
        )
    inbox.notify(session, taskhub, instance_id)
    return scheduled is not None


def ensure_started(
    session: Session,
    *,
    taskhub: str,
    instance_id: str,
    name: str,
    input: Any,
    version: str | None = None,
    trace_parent: str | None = None,
) -> bool:
    """Start `instance_id` unless it is already pending or running; True if this call started it.

    A finished instance under that id is replaced. Used for long-lived instances addressed by a
    well-known id (agent sessions), which any number of callers may start concurrently.
    """
    existing = session.get(Instance, (taskhub, instance_id), with_for_update=True)
    if existing is not None and existing.status not in TERMINAL:
        return False
    _start(
        session,
        existing,
        taskhub=taskhub,
        instance_id=instance_id,
        name=name,
        input=input,
        start_at=None,
        version=version,
        trace_parent=trace_parent,
    )
    return True


def start_new(
    session: Session, *, taskhub: str, instance_id: str, name: str, input: Any, trace_parent: str | None = None
) -> bool:
    """`create` in one statement, for an id no instance has had (an agent turn's, from its fresh correlation
    id): True if it started the instance; False where it did nothing (the id is taken, or the database is
    not PostgreSQL), for the caller to take `create`'s path and its answer."""
    if not dialect.of(session).writes_in_one_statement:
        return False
    execution_id = ids.new_execution_id()
    params = {
        "taskhub": taskhub,
        "instance_id": instance_id,
        "name": name,
        "execution_id": execution_id,
        "input": input,
        "parent_instance_id": None,
        "parent_execution_id": None,
        "parent_task_id": None,
        "tags": None,
        "version": None,
        "trace_parent": trace_parent,
        "start_key": ids.start_key(execution_id),
        "start_event": event_to_json(ExecutionStarted(name=name, input=input, execution_id=execution_id)),
        "notify": inbox.notify_payload(taskhub, instance_id, "PENDING"),
    }
    started, _notified = session.execute(_start_new_statement(), params).one()
    return bool(started)


@cache
def _start_new_statement() -> Select[int, int]:
    """Built once, from bind parameters: the instance, its start event and the notification, or nothing."""
    box = inbox_table.c
    started = insert_new_instance("postgresql").returning(instances_table.c.instance_id).cte("started")
    start_event = insert(inbox_table).from_select(
        ["taskhub", "instance_id", "execution_id", "dedupe_key", "event"],
        select(
            bindparam("taskhub", type_=box.taskhub.type),
            started.c.instance_id,
            bindparam("execution_id", type_=box.execution_id.type),
            bindparam("start_key", type_=box.dedupe_key.type),
            bindparam("start_event", type_=box.event.type),
        ),
    )
    # Selected, so that it runs: a CTE that only reads runs only if the statement reads it.
    notified = select(func.pg_notify(inbox.NOTIFY_CHANNEL, bindparam("notify", type_=String()))).select_from(started)
    return select(
        select(func.count()).select_from(started).scalar_subquery(),
        select(func.count()).select_from(notified.subquery()).scalar_subquery(),
    ).add_cte(start_event.cte("start_event"))


def insert_new_instance(backend: str) -> Any:
    """An INSERT of a pending instance's row that does nothing if the id is taken, from bind parameters
    named after the columns (the parent's may be None): for statements built once per database."""
    columns = instances_table.c
    names = ("taskhub", "instance_id", "name", "execution_id", "input", "parent_instance_id",
             "parent_execution_id", "parent_task_id", "tags", "version", "trace_parent")  # fmt: skip
    values: dict[str, Any] = {name: bindparam(name, type_=columns[name].type) for name in names}
    return (
        dialect.named(backend)
        .insert(instances_table)
        .values(**values, status="PENDING", history_length=0)
        .on_conflict_do_nothing(index_elements=["taskhub", "instance_id"])
    )


def get(session: Session, taskhub: str, instance_id: str) -> OrchestrationState | None:
    # A plain row, not an ORM object: waiting clients read the state on every change they hear of.
    row = session.execute(_GET, {"taskhub": taskhub, "instance_id": instance_id}).one_or_none()
    return to_state(row) if row is not None else None


_GET = select(instances_table).where(
    instances_table.c.taskhub == bindparam("taskhub"), instances_table.c.instance_id == bindparam("instance_id")
)


def name_of(session: Session, taskhub: str, instance_id: str) -> str | None:
    """The orchestration name of the instance, or None if there is no such instance."""
    table = instances_table.c
    found = session.execute(select(table.name).where(table.taskhub == taskhub, table.instance_id == instance_id))
    return found.scalar_one_or_none()


def require(session: Session, taskhub: str, instance_id: str) -> Instance:
    row = session.get(Instance, (taskhub, instance_id))
    if row is None:
        raise InstanceNotFoundError(instance_id, taskhub)
    return row


def query(
    session: Session,
    taskhub: str,
    *,
    statuses: Sequence[OrchestrationStatus] | None = None,
    name: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    instance_id_prefix: str | None = None,
    tags: dict[str, str] | None = None,
    exclude_names: Sequence[str] | None = None,
    exclude_id_prefix: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[OrchestrationState]:
    statement = select(Instance).where(Instance.taskhub == taskhub)
    if tags:
        statement = statement.where(dialect.of(session).json_contains(Instance.tags, tags))
    if exclude_names:
        statement = statement.where(Instance.name.not_in(list(exclude_names)))
    if exclude_id_prefix:
        statement = statement.where(~Instance.instance_id.startswith(exclude_id_prefix, autoescape=True))
    if statuses:
        statement = statement.where(Instance.status.in_([s.value for s in statuses]))
    if name:
        statement = statement.where(Instance.name == name)
    if created_from:
        statement = statement.where(Instance.created_at >= created_from)
    if created_to:
        statement = statement.where(Instance.created_at < created_to)
    if instance_id_prefix:
        statement = statement.where(Instance.instance_id.startswith(instance_id_prefix, autoescape=True))
    statement = statement.order_by(Instance.created_at.desc(), Instance.instance_id).limit(limit).offset(offset)
    return [to_state(row) for row in session.scalars(statement)]


def history(session: Session, taskhub: str, instance_id: str) -> list[dict[str, Any]]:
    require(session, taskhub, instance_id)
    rows = session.execute(
        select(HistoryRow.seq, HistoryRow.event, HistoryRow.created_at)
        .where(HistoryRow.taskhub == taskhub, HistoryRow.instance_id == instance_id)
        .order_by(HistoryRow.seq)
    ).all()
    return [{"seq": seq, **event, "recorded_at": created.isoformat()} for seq, event, created in rows]


def raise_event(session: Session, taskhub: str, instance_id: str, name: str, data: Any) -> None:
    row = require(session, taskhub, instance_id)
    if row.status in TERMINAL:
        raise InvalidInstanceStateError(
            f"instance {instance_id!r} is {row.status}; it can no longer receive event {name!r}"
        )
    inbox.post(session, row.taskhub, row.instance_id, EventRaised(name=name, data=data))


def terminate(session: Session, taskhub: str, instance_id: str, output: Any) -> bool:
    """Ask the instance (and its running sub-orchestrations) to stop; False if it had already ended."""
    row = require(session, taskhub, instance_id)
    if row.status in TERMINAL:
        return False
    inbox.post(session, row.taskhub, row.instance_id, ExecutionTerminated(output=output))
    return True


def suspend(session: Session, taskhub: str, instance_id: str, reason: str | None) -> None:
    row = require(session, taskhub, instance_id)
    if row.status in TERMINAL:
        raise InvalidInstanceStateError(f"instance {instance_id!r} is {row.status} and cannot be suspended")
    inbox.post(session, row.taskhub, row.instance_id, ExecutionSuspended(reason=reason))


def resume(session: Session, taskhub: str, instance_id: str, reason: str | None) -> None:
    row = require(session, taskhub, instance_id)
    if row.status in TERMINAL:
        raise InvalidInstanceStateError(f"instance {instance_id!r} is {row.status} and cannot be resumed")
    inbox.post(session, row.taskhub, row.instance_id, ExecutionResumed(reason=reason))


def purge(session: Session, taskhub: str, instance_id: str, *, recursive: bool = True) -> int:
    """Delete a finished instance and everything stored for it; returns how many instances went."""
    row = require(session, taskhub, instance_id)
    if row.status not in TERMINAL:
        raise InvalidInstanceStateError(
            f"instance {instance_id!r} is {row.status}; only COMPLETED, FAILED or TERMINATED instances "
            "can be purged (terminate it first)"
        )
    count = 0
    if recursive:
        children = session.scalars(
            select(Instance.instance_id).where(
                Instance.taskhub == taskhub, Instance.parent_instance_id == instance_id, Instance.status.in_(TERMINAL)
            )
        ).all()
        for child in children:
            count += purge(session, taskhub, child, recursive=True)
    session.execute(delete(Instance).where(Instance.taskhub == taskhub, Instance.instance_id == instance_id))
    return count + 1


def purge_where(
    session: Session,
    taskhub: str,
    *,
    created_before: datetime | None = None,
    statuses: Sequence[OrchestrationStatus] | None = None,
) -> int:
    """Delete finished instances matching the filter; running ones are never touched."""
    wanted = {s.value for s in statuses} if statuses else set(TERMINAL)
    not_terminal = wanted - TERMINAL
    if not_terminal:
        raise InvalidInstanceStateError(
            f"purge only deletes finished instances; {sorted(not_terminal)} are not finished statuses"
        )
    statement = delete(Instance).where(Instance.taskhub == taskhub, Instance.status.in_(wanted))
    if created_before is not None:
        statement = statement.where(Instance.created_at < created_before)
    result = session.execute(statement)
    return int(result.rowcount)  # type: ignore[attr-defined]


def trace_parent_of(session: Session, taskhub: str, instance_id: str) -> str | None:
    """The W3C traceparent stored with the instance (None: none, or no such instance)."""
    return session.scalar(
        select(Instance.trace_parent).where(Instance.taskhub == taskhub, Instance.instance_id == instance_id)
    )
