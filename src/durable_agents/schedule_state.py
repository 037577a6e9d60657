"""What a client sees of a recurring schedule, read from its row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from . import ids
from .models import ScheduleRow
from .recurrence import Recurrence


def recurrence_of(row: ScheduleRow) -> Recurrence:
    """The fire times of the schedule in `row` (checked when it was written)."""
    return Recurrence(
        cron=row.cron,
        every=timedelta(seconds=row.every_seconds) if row.every_seconds is not None else None,
        timezone=row.timezone,
        start_at=row.start_at,
        end_at=row.end_at,
    )


@dataclass(frozen=True)
class ScheduleState:
    """A snapshot of one schedule: its definition, and where its firing has got to."""

    schedule_id: str
    taskhub: str
    orchestration: str
    input: Any
    cron: str | None
    every: timedelta | None
    timezone: str
    start_at: datetime | None
    end_at: datetime | None
    overlap: str
    catchup_window: timedelta
    paused: bool
    note: str | None
    #: The next fire time (None once the schedule has ended); while paused, the one it resumes from.
    next_fire_at: datetime | None
    #: A fire time waiting for the running run to end (overlap "buffer_one").
    buffered_fire_at: datetime | None
    last_fire_at: datetime | None
    last_instance_id: str | None
    #: Runs started, and fire times passed over (older than the catch-up window, or refused by the overlap).
    fired_count: int
    skipped_count: int
    created_at: datetime
    updated_at: datetime
    #: The recurrence in words ("At 09:00 AM, Monday through Friday", "every 5 minutes").
    description: str

    @classmethod
    def from_row(cls, row: ScheduleRow) -> ScheduleState:
        times = recurrence_of(row)
        return cls(
            schedule_id=row.schedule_id,
            taskhub=row.taskhub,
            orchestration=row.orchestration,
            input=row.input,
            cron=row.cron,
            every=times.every,
            timezone=row.timezone,
            start_at=row.start_at,
            end_at=row.end_at,
            overlap=row.overlap,
            catchup_window=timedelta(seconds=row.catchup_window_seconds),
            paused=row.paused,
            note=row.note,
            next_fire_at=row.next_fire_at,
            buffered_fire_at=row.buffered_fire_at,
            last_fire_at=row.last_fire_at,
            last_instance_id=row.last_instance_id,
            fired_count=row.fired_count,
            skipped_count=row.skipped_count,
            created_at=row.created_at,
            updated_at=row.updated_at,
            description=times.describe(),
        )

    def run_id(self, fire_at: datetime | None = None) -> str:
        """The instance id of the run for `fire_at` (default: the next fire time), to wait for it."""
        moment = fire_at or self.next_fire_at
        if moment is None:
            raise ValueError(f"schedule {self.schedule_id!r} has ended: it has no next fire time")
        return ids.schedule_run_id(self.schedule_id, moment)

    def to_json(self) -> dict[str, Any]:
        def moment(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "schedule_id": self.schedule_id,
            "taskhub": self.taskhub,
            "orchestration": self.orchestration,
            "input": self.input,
            "cron": self.cron,
            "every_seconds": self.every.total_seconds() if self.every is not None else None,
            "timezone": self.timezone,
            "start_at": moment(self.start_at),
            "end_at": moment(self.end_at),
            "overlap": self.overlap,
            "catchup_window_seconds": self.catchup_window.total_seconds(),
            "paused": self.paused,
            "note": self.note,
            "next_fire_at": moment(self.next_fire_at),
            "buffered_fire_at": moment(self.buffered_fire_at),
            "last_fire_at": moment(self.last_fire_at),
            "last_instance_id": self.last_instance_id,
            "fired_count": self.fired_count,
            "skipped_count": self.skipped_count,
            "created_at": moment(self.created_at),
            "updated_at": moment(self.updated_at),
            "description": self.description,
        }
