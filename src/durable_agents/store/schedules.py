"""Schedule rows: create, read, list, delete, claim the due ones, and start their runs as instances."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import ids
from ..errors import ScheduleExistsError, ScheduleNotFoundError
from ..models import Instance, ScheduleRow
from ..state import TERMINAL
from . import dialect, instances

#: Schedules one sweep claims at most; the rest are claimed by the next sweep (or another worker's).
CLAIM_BATCH = 200


def insert(session: Session, row: ScheduleRow) -> None:
    if session.get(ScheduleRow, (row.taskhub, row.schedule_id), with_for_update=True) is not None:
        raise ScheduleExistsError(row.schedule_id)
    session.add(row)
    try:
        session.flush()
    except IntegrityError as error:  # created by a concurrent call since the read above
        raise ScheduleExistsError(row.schedule_id) from error


def require(session: Session, taskhub: str, schedule_id: str, *, lock: bool = False) -> ScheduleRow:
    row = session.get(ScheduleRow, (taskhub, schedule_id), with_for_update=lock)
    if row is None:
        raise ScheduleNotFoundError(schedule_id, taskhub)
    return row


def listing(session: Session, taskhub: str, *, limit: int = 100, offset: int = 0) -> list[ScheduleRow]:
    statement = (
        select(ScheduleRow)
        .where(ScheduleRow.taskhub == taskhub)
        .order_by(ScheduleRow.schedule_id)
        .limit(limit)
        .offset(offset)
    )
    return list(session.scalars(statement))


def remove(session: Session, taskhub: str, schedule_id: str) -> None:
    """Delete the schedule; the runs it started stay, as any instance does."""
    require(session, taskhub, schedule_id, lock=True)
    session.execute(delete(ScheduleRow).where(ScheduleRow.taskhub == taskhub, ScheduleRow.schedule_id == schedule_id))


def claim_due(session: Session, taskhub: str) -> list[ScheduleRow]:
    """The unpaused schedules with a fire time due, or a buffered one waiting, locked for this transaction.

    Rows another worker's sweep holds are skipped, not waited for: that sweep fires them, and the next
    fire time it records makes them not due any more when this one looks again."""
    statement = (
        select(ScheduleRow)
        .where(
            ScheduleRow.taskhub == taskhub,
            ScheduleRow.paused.is_(False),
            # The database's clock in the statement: a sweep that finds nothing due costs one round trip.
            or_(ScheduleRow.next_fire_at <= dialect.of(session).clock(), ScheduleRow.buffered_fire_at.is_not(None)),
        )
        .order_by(ScheduleRow.next_fire_at)
        .limit(CLAIM_BATCH)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(statement))


def run_is_live(session: Session, taskhub: str, instance_id: str | None) -> bool:
    """Whether the run `instance_id` is still pending, running or suspended (a purged one is not)."""
    if instance_id is None:
        return False
    status = session.scalar(
        select(Instance.status).where(Instance.taskhub == taskhub, Instance.instance_id == instance_id)
    )
    return status is not None and status not in TERMINAL


def start_runs(
    session: Session, row: ScheduleRow, fire_times: list[datetime], *, version: str | None, manual: bool = False
) -> list[str]:
    """Start a run of `row` for each fire time (or, `manual`, for a trigger at that moment), of orchestration
    `version` (the firing app's, as a client's start would be); the ids started.

    A fire time whose run exists already started it before (the id derives from the fire time), so it
    is not started twice."""
    started = []
    for fire_at in fire_times:
        make_id = ids.triggered_run_id if manual else ids.schedule_run_id
        instance_id = make_id(row.schedule_id, fire_at)
        if session.get(Instance, (row.taskhub, instance_id)) is None:
            instances.create(
                session,
                taskhub=row.taskhub,
                instance_id=instance_id,
                name=row.orchestration,
                input=row.input,
                start_at=None,
                reuse_id=False,
                tags={ids.SCHEDULE_TAG: row.schedule_id},
                version=version,
            )
            started.append(instance_id)
        row.last_instance_id = instance_id
        if not manual:
            row.last_fire_at = fire_at
    row.fired_count += len(started)
    return started
