"""The client's schedule methods: create, read, list, pause, resume, update, delete and trigger recurring runs."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from .errors import InvalidScheduleError
from .models import ScheduleRow
from .moments import bounded_or_none
from .orchestrator.context import durable_name
from .recurrence import Recurrence
from .schedule_policy import DEFAULT_CATCHUP_WINDOW, checked_catchup_window, checked_overlap
from .schedule_state import ScheduleState, recurrence_of
from .serialization import encode
from .store import dialect, schedules
from .store.db import transaction
from .tasks.schedules import trigger

if TYPE_CHECKING:
    from .app import DurableApp
    from .config import Settings

#: A schedule id names its runs (`id@fire time`) and goes in URLs: printable, no '/', not the agents' '@'.
_SCHEDULE_ID = re.compile(r"^[^\x00-\x1f\x7f/@][^\x00-\x1f\x7f/]{0,199}$")


class _Unset:
    """A keyword `update_schedule` was not given (None may be a value: no end, no input)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()


def checked_schedule_id(schedule_id: str) -> str:
    if not isinstance(schedule_id, str) or not _SCHEDULE_ID.match(schedule_id):
        raise InvalidScheduleError(
            f"schedule id {schedule_id!r} is not allowed: use 1 to 200 printable characters, without '/', "
            "not starting with '@'"
        )
    return schedule_id


class ScheduleMethods:
    """Recurring schedules of the task hub, fired by its workers' sweepers (no Celery beat needed).

    Mixed into `DurableClient`, whose attributes below it uses."""

    app: DurableApp
    settings: Settings
    taskhub: str
    _url: str
    _knows_names: bool

    def create_schedule(
        self,
        schedule_id: str,
        orchestration: str | Callable[..., Any],
        *,
        input: Any = None,
        cron: str | None = None,
        every: timedelta | None = None,
        start_at: datetime | None = None,
        end_at: datetime | None = None,
        timezone: str = "UTC",
        overlap: str = "skip",
        catchup_window: timedelta = DEFAULT_CATCHUP_WINDOW,
        paused: bool = False,
        note: str | None = None,
    ) -> ScheduleState:
        """Start `orchestration` with `input` at every fire time: those of `cron` (5 fields, read in
        `timezone`) or every `every` (counted from `start_at`, else from 1970-01-01 UTC), from `start_at`
        to `end_at`. Each run's instance id is `schedule_id@fire time (UTC)`.

        `overlap` says what a fire time does while the previous run still runs: "skip" it, "buffer_one"
        (start it when that run ends; one waits at most) or "allow" (start anyway). Fire times missed
        while no worker ran are caught up when they are at most `catchup_window` old; older ones are skipped."""
        name = durable_name(orchestration)
        if self._knows_names:
            self.app.registry.orchestration(name)  # a clear error for a misspelt name
        times = Recurrence.checked(
            cron=cron,
            every=every,
            timezone=timezone,
            start_at=bounded_or_none(start_at, "start_at"),
            end_at=bounded_or_none(end_at, "end_at"),
        )
        row = ScheduleRow(
            taskhub=self.taskhub,
            schedule_id=checked_schedule_id(schedule_id),
            orchestration=name,
            input=encode(input, what=f"input of schedule {schedule_id!r}", limit=self.settings.max_payload_bytes),
            cron=times.cron,
            every_seconds=times.every.total_seconds() if times.every is not None else None,
            timezone=times.timezone,
            start_at=times.start_at,
            end_at=times.end_at,
            overlap=checked_overlap(overlap),
            catchup_window_seconds=checked_catchup_window(catchup_window).total_seconds(),
            paused=bool(paused),
            note=_checked_note(note),
            fired_count=0,
            skipped_count=0,
        )
        with transaction(self._url) as session:
            row.next_fire_at = times.next_after(dialect.of(session).current_time(session))
            schedules.insert(session, row)
            return ScheduleState.from_row(row)

    def get_schedule(self, schedule_id: str) -> ScheduleState | None:
        with transaction(self._url) as session:
            row = session.get(ScheduleRow, (self.taskhub, schedule_id))
            return ScheduleState.from_row(row) if row is not None else None

    def list_schedules(self, *, limit: int = 100, offset: int = 0) -> list[ScheduleState]:
        """The task hub's schedules, by id."""
        with transaction(self._url) as session:
            rows = schedules.listing(session, self.taskhub, limit=limit, offset=offset)
            return [ScheduleState.from_row(row) for row in rows]

    def pause_schedule(self, schedule_id: str, *, note: str | None = None) -> ScheduleState:
        """Stop firing until `resume_schedule`; runs already started go on."""
        return self._change(schedule_id, lambda row, now: _pause(row, note))

    def resume_schedule(self, schedule_id: str, *, note: str | None = None) -> ScheduleState:
        """Fire again, from the next fire time after now: times that passed while paused are not caught up."""
        return self._change(schedule_id, lambda row, now: _resume(row, now, note))

    def update_schedule(
        self,
        schedule_id: str,
        *,
        orchestration: str | Callable[..., Any] | _Unset = UNSET,
        input: Any = UNSET,
        cron: str | _Unset = UNSET,
        every: timedelta | _Unset = UNSET,
        start_at: datetime | _Unset | None = UNSET,
        end_at: datetime | _Unset | None = UNSET,
        timezone: str | _Unset = UNSET,
        overlap: str | _Unset = UNSET,
        catchup_window: timedelta | _Unset = UNSET,
        note: str | _Unset | None = UNSET,
    ) -> ScheduleState:
        """Change what is given and keep the rest. `cron` replaces an interval and `every` a cron
        expression; a change of timing fires next at the first new fire time after now."""
        if not isinstance(orchestration, _Unset):
            orchestration = durable_name(orchestration)
            if self._knows_names:
                self.app.registry.orchestration(orchestration)
        encoded = (
            input
            if isinstance(input, _Unset)
            else encode(input, what=f"input of schedule {schedule_id!r}", limit=self.settings.max_payload_bytes)
        )
        if not isinstance(overlap, _Unset):
            checked_overlap(overlap)
        if not isinstance(catchup_window, _Unset):
            checked_catchup_window(catchup_window)
        if not isinstance(cron, _Unset) and not isinstance(every, _Unset):
            raise InvalidScheduleError("give cron= or every= to update_schedule, not both: a schedule has one of them")

        def change(row: ScheduleRow, now: datetime) -> None:
            times = recurrence_of(row)
            if not isinstance(cron, _Unset):
                times = replace(times, cron=cron, every=None)
            elif not isinstance(every, _Unset):
                times = replace(times, cron=None, every=every)
            new_times = Recurrence.checked(
                cron=times.cron,
                every=times.every,
                timezone=timezone if not isinstance(timezone, _Unset) else times.timezone,
                start_at=times.start_at if isinstance(start_at, _Unset) else bounded_or_none(start_at, "start_at"),
                end_at=times.end_at if isinstance(end_at, _Unset) else bounded_or_none(end_at, "end_at"),
            )
            if new_times != recurrence_of(row):
                _set_times(row, new_times)
                row.next_fire_at = new_times.next_after(now)
            if not isinstance(orchestration, _Unset):
                row.orchestration = orchestration
            if not isinstance(encoded, _Unset):
                row.input = encoded
            if not isinstance(overlap, _Unset):
                row.overlap = overlap
            if not isinstance(catchup_window, _Unset):
                row.catchup_window_seconds = catchup_window.total_seconds()
            if not isinstance(note, _Unset):
                row.note = _checked_note(note)

        return self._change(schedule_id, change)

    def delete_schedule(self, schedule_id: str) -> None:
        """Delete the schedule; the runs it started stay (purge them as any instance)."""
        with transaction(self._url) as session:
            schedules.remove(session, self.taskhub, schedule_id)

    def trigger_schedule(self, schedule_id: str) -> str | None:
        """Start a run now, outside the recurrence, as the overlap policy allows (a paused schedule too):
        the run's instance id, or None when the previous run still runs and the policy skipped or
        buffered this one."""
        return trigger(self.app, schedule_id)

    def _change(self, schedule_id: str, change: Callable[[ScheduleRow, datetime], None]) -> ScheduleState:
        with transaction(self._url) as session:
            row = schedules.require(session, self.taskhub, schedule_id, lock=True)
            now = _now(session)
            change(row, now)
            row.updated_at = now
            session.flush()
            return ScheduleState.from_row(row)


def _now(session: Session) -> datetime:
    return dialect.of(session).current_time(session)


def _pause(row: ScheduleRow, note: str | None) -> None:
    row.paused = True
    if note is not None:
        row.note = _checked_note(note)


def _resume(row: ScheduleRow, now: datetime, note: str | None) -> None:
    if row.paused:
        row.paused = False
        row.next_fire_at = recurrence_of(row).next_after(now)
    if note is not None:
        row.note = _checked_note(note)


def _set_times(row: ScheduleRow, times: Recurrence) -> None:
    row.cron = times.cron
    row.every_seconds = times.every.total_seconds() if times.every is not None else None
    row.timezone = times.timezone
    row.start_at = times.start_at
    row.end_at = times.end_at


def _checked_note(note: str | None) -> str | None:
    if note is not None and (not isinstance(note, str) or len(note) > 1000 or "\x00" in note):
        raise InvalidScheduleError("a schedule's note must be text of at most 1000 characters")
    return note
