"""Firing schedules: every sweep claims the due ones, starts their runs as the policies say, and wakes them."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..models import ScheduleRow
from ..schedule_policy import checked_overlap, plan
from ..schedule_state import recurrence_of
from ..steps.outcome import Dispatch
from ..store import dialect, schedules
from ..store.db import transaction
from .dispatch import publish

if TYPE_CHECKING:
    from ..app import DurableApp

log = logging.getLogger(__name__)


def fire_schedules(app: DurableApp) -> int:
    """Start the runs of every due schedule of the app's task hub; returns how many it started.

    Any number of workers may call it at once: a schedule is claimed by one of them (FOR UPDATE SKIP
    LOCKED), and a fire time's run has an id derived from it, so it starts at most once."""
    settings = app.settings
    with transaction(settings.database_url) as session:
        due = schedules.claim_due(session, settings.taskhub)
        started = fire_all(session, due, version=app.version) if due else []
    if started:
        publish(app, Dispatch(steps=started))
    return len(started)


def fire_all(session: Session, due: list[ScheduleRow], *, version: str | None) -> list[str]:
    """Act on the claimed schedules at the database's time: the runs they started, of orchestration
    `version` (the firing worker's app's: in a blue/green deploy, whichever side fires starts its own)."""
    now = dialect.of(session).current_time(session)
    started: list[str] = []
    for row in due:
        try:
            with session.begin_nested():  # one schedule that cannot fire holds up no other
                started += fire(session, row, now, version=version)
        except SQLAlchemyError:
            raise  # the database's trouble, not the schedule's: the whole sweep is tried again
        except Exception:
            log.exception("schedule %r could not fire; the next sweep tries again", row.schedule_id)
    return started


def fire(session: Session, row: ScheduleRow, now: datetime, *, version: str | None) -> list[str]:
    """Act on one claimed schedule at `now`: the runs it started."""
    decided = plan(
        recurrence_of(row),
        next_fire_at=row.next_fire_at,
        buffered=row.buffered_fire_at,
        running=schedules.run_is_live(session, row.taskhub, row.last_instance_id),
        overlap=checked_overlap(row.overlap),
        catchup_window=timedelta(seconds=row.catchup_window_seconds),
        now=now,
    )
    started = schedules.start_runs(session, row, decided.start, version=version)
    row.buffered_fire_at = decided.buffered
    row.next_fire_at = decided.next_fire_at
    row.skipped_count += decided.skipped
    return started


def trigger(app: DurableApp, schedule_id: str) -> str | None:
    """Start a run of the schedule now, as its overlap policy allows: the run's id, or None when the
    policy held it back (`skip`: skipped; `buffer_one`: buffered until the running run ends)."""
    settings = app.settings
    with transaction(settings.database_url) as session:
        row = schedules.require(session, settings.taskhub, schedule_id, lock=True)
        now = dialect.of(session).current_time(session)
        running = schedules.run_is_live(session, row.taskhub, row.last_instance_id)
        started: list[str] = []
        if row.overlap == "allow" or not running:
            started = schedules.start_runs(session, row, [now], version=app.version, manual=True)
        elif row.overlap == "buffer_one" and row.buffered_fire_at is None:
            row.buffered_fire_at = now
        else:
            row.skipped_count += 1
    if started:
        publish(app, Dispatch(steps=started))
    return started[0] if started else None
