"""Request and response bodies of the schedule routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import AfterValidator, AwareDatetime, BaseModel, Field

from .schemas import PRINTABLE, JsonValue, Strict, _in_range

ScheduleId = Annotated[
    str, Path(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f/]+$", description="The schedule id.")
]
Moment = Annotated[AwareDatetime, AfterValidator(_in_range)]
Overlap = Literal["skip", "buffer_one", "allow"]


class ScheduleTiming(Strict):
    cron: str | None = Field(
        default=None, max_length=256, pattern=PRINTABLE, description="5 cron fields, like '0 9 * * MON-FRI'."
    )
    every_seconds: float | None = Field(default=None, ge=1, le=10 * 366 * 86400, description="Or an interval.")
    timezone: str | None = Field(default=None, max_length=64, pattern=PRINTABLE, description="IANA zone of cron.")
    start_at: Moment | None = Field(default=None, description="No fire time before it; intervals count from it.")
    end_at: Moment | None = Field(default=None, description="No fire time after it.")
    overlap: Overlap | None = Field(default=None, description="While the previous run runs: skip, buffer_one, allow.")
    catchup_window_seconds: float | None = Field(
        default=None, ge=1, le=10 * 366 * 86400, description="Missed fire times at most this old are caught up."
    )
    note: str | None = Field(default=None, max_length=1000, pattern=r"^[^\x00]*$")


class ScheduleRequest(ScheduleTiming):
    schedule_id: str = Field(
        min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f/@][^\x00-\x1f\x7f/]*$", description="Names its runs."
    )
    orchestration: str = Field(min_length=1, max_length=256, pattern=PRINTABLE)
    input: JsonValue = Field(default=None, description="Every run's input (any JSON).")
    paused: bool = Field(default=False, description="Create it paused.")


class ScheduleUpdate(ScheduleTiming):
    """Only the fields present change; `cron` replaces an interval and `every_seconds` a cron expression."""

    orchestration: str | None = Field(default=None, min_length=1, max_length=256, pattern=PRINTABLE)
    input: JsonValue = Field(default=None, description="Every run's input from now on.")


class NoteRequest(Strict):
    note: str | None = Field(default=None, max_length=1000, pattern=r"^[^\x00]*$")


class Schedule(BaseModel):
    schedule_id: str
    taskhub: str
    orchestration: str
    input: Any
    cron: str | None
    every_seconds: float | None
    timezone: str
    start_at: datetime | None
    end_at: datetime | None
    overlap: Overlap
    catchup_window_seconds: float
    paused: bool
    note: str | None
    next_fire_at: datetime | None = Field(description="The next fire time; null once the schedule has ended.")
    buffered_fire_at: datetime | None
    last_fire_at: datetime | None
    last_instance_id: str | None
    fired_count: int
    skipped_count: int
    created_at: datetime
    updated_at: datetime
    description: str = Field(description="The recurrence in words.")
    runs_url: str = Field(description="GET it for the schedule's runs (instances tagged schedule=ID), newest first.")


class SchedulePage(BaseModel):
    items: list[Schedule]
    limit: int
    offset: int
    next_offset: int | None


class Triggered(BaseModel):
    schedule_id: str
    instance_id: str | None = Field(description="The run started; null when the overlap policy held it back.")
    status_url: str | None


class Deleted(BaseModel):
    schedule_id: str
    deleted: Literal[True] = True
