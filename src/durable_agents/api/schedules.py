"""Schedule routes: create, list, read, change, pause, resume, trigger and delete schedules, and list their runs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response

from .. import ids
from ..errors import OrchestrationNotRegisteredError, ScheduleNotFoundError
from ..schedule_client import UNSET
from ..schedule_policy import DEFAULT_CATCHUP_WINDOW
from ..schedule_state import ScheduleState
from .context import INTERNAL_PREFIX, STATUS_ROUTE, ApiContext
from .schedule_schemas import (
    Deleted,
    NoteRequest,
    Schedule,
    ScheduleId,
    SchedulePage,
    ScheduleRequest,
    ScheduleUpdate,
    Triggered,
)
from .schemas import Instance, InstancePage, Limit, Offset, errors

SCHEDULE_ROUTE = "durable_agents.get_schedule"
RUNS_ROUTE = "durable_agents.schedule_runs"


def schedule_routes(context: ApiContext) -> APIRouter:
    api = APIRouter(route_class=context.route_class, tags=["schedules"])

    def body(request: Request, state: ScheduleState) -> Schedule:
        runs_url = context.url(request, RUNS_ROUTE, schedule_id=state.schedule_id)
        return Schedule.model_validate({**state.to_json(), "runs_url": runs_url})

    def check_name(name: str) -> None:
        if name.startswith(INTERNAL_PREFIX):
            raise OrchestrationNotRegisteredError(name, context.orchestration_names())

    @api.post(
        "/schedules",
        status_code=201,
        response_model=Schedule,
        summary="Create a recurring schedule",
        responses=errors(404, 409, 413, 422),
    )
    def create_schedule(request: Request, response: Response, payload: ScheduleRequest) -> Schedule:
        """Starts `orchestration` at every fire time of `cron` (in `timezone`) or every `every_seconds`.
        Each run's instance id is `schedule_id@fire time`; an id in use answers 409."""
        check_name(payload.orchestration)
        every = timedelta(seconds=payload.every_seconds) if payload.every_seconds is not None else None
        window = payload.catchup_window_seconds
        state = context.client.create_schedule(
            payload.schedule_id,
            payload.orchestration,
            input=payload.input,
            cron=payload.cron,
            every=every,
            start_at=payload.start_at,
            end_at=payload.end_at,
            timezone=payload.timezone or "UTC",
            overlap=payload.overlap or "skip",
            catchup_window=timedelta(seconds=window) if window is not None else DEFAULT_CATCHUP_WINDOW,
            paused=payload.paused,
            note=payload.note,
        )
        response.headers["Location"] = context.url(request, SCHEDULE_ROUTE, schedule_id=state.schedule_id)
        return body(request, state)

    @api.get("/schedules", response_model=SchedulePage, summary="List schedules, by id", responses=errors(422))
    def list_schedules(request: Request, limit: Limit = 50, offset: Offset = 0) -> SchedulePage:
        states = context.client.list_schedules(limit=limit, offset=offset)
        return SchedulePage(
            items=[body(request, state) for state in states],
            limit=limit,
            offset=offset,
            next_offset=offset + len(states) if len(states) == limit else None,
        )

    @api.get(
        "/schedules/{schedule_id}",
        name=context.route_name(SCHEDULE_ROUTE),
        response_model=Schedule,
        summary="A schedule: its definition, next fire time and last run",
        responses=errors(404, 422),
    )
    def get_schedule(request: Request, schedule_id: ScheduleId) -> Schedule:
        state = context.client.get_schedule(schedule_id)
        if state is None:
            raise ScheduleNotFoundError(schedule_id, context.settings.taskhub)
        return body(request, state)

    @api.get(
        "/schedules/{schedule_id}/runs",
        name=context.route_name(RUNS_ROUTE),
        response_model=InstancePage,
        summary="A schedule's runs, newest first",
        responses=errors(404, 422),
    )
    def schedule_runs(schedule_id: ScheduleId, limit: Limit = 50, offset: Offset = 0) -> InstancePage:
        if context.client.get_schedule(schedule_id) is None:
            raise ScheduleNotFoundError(schedule_id, context.settings.taskhub)
        states = context.client.query_instances(tags={ids.SCHEDULE_TAG: schedule_id}, limit=limit, offset=offset)
        return InstancePage(
            items=[Instance.model_validate(s, from_attributes=True) for s in states],
            limit=limit,
            offset=offset,
            next_offset=offset + len(states) if len(states) == limit else None,
        )

    @api.patch(
        "/schedules/{schedule_id}",
        response_model=Schedule,
        summary="Change a schedule (only the fields given)",
        responses=errors(404, 413, 422),
    )
    def update_schedule(request: Request, schedule_id: ScheduleId, payload: ScheduleUpdate) -> Schedule:
        given = payload.model_fields_set
        changes: dict[str, Any] = {}
        for field in ("orchestration", "input", "cron", "timezone", "start_at", "end_at", "overlap", "note"):
            if field in given:
                changes[field] = getattr(payload, field)
        if "orchestration" in changes:
            check_name(changes["orchestration"] or "")
        if "every_seconds" in given:
            changes["every"] = timedelta(seconds=payload.every_seconds) if payload.every_seconds is not None else None
        if "catchup_window_seconds" in given and payload.catchup_window_seconds is not None:
            changes["catchup_window"] = timedelta(seconds=payload.catchup_window_seconds)
        for field in ("orchestration", "cron", "every", "timezone", "overlap"):
            if field in changes and changes[field] is None:
                changes[field] = UNSET  # null for a field that cannot be null: unchanged
        return body(request, context.client.update_schedule(schedule_id, **changes))

    @api.post(
        "/schedules/{schedule_id}/pause",
        response_model=Schedule,
        summary="Pause a schedule (runs already started go on)",
        responses=errors(404, 422),
    )
    def pause(request: Request, schedule_id: ScheduleId, payload: NoteRequest | None = None) -> Schedule:
        return body(request, context.client.pause_schedule(schedule_id, note=payload.note if payload else None))

    @api.post(
        "/schedules/{schedule_id}/resume",
        response_model=Schedule,
        summary="Resume a schedule from its next fire time after now",
        responses=errors(404, 422),
    )
    def resume(request: Request, schedule_id: ScheduleId, payload: NoteRequest | None = None) -> Schedule:
        return body(request, context.client.resume_schedule(schedule_id, note=payload.note if payload else None))

    @api.post(
        "/schedules/{schedule_id}/trigger",
        status_code=202,
        response_model=Triggered,
        summary="Start a run now, as the overlap policy allows",
        responses=errors(404, 422),
    )
    def trigger(request: Request, schedule_id: ScheduleId) -> Triggered:
        started = context.client.trigger_schedule(schedule_id)
        status_url = context.url(request, STATUS_ROUTE, instance_id=started) if started else None
        return Triggered(schedule_id=schedule_id, instance_id=started, status_url=status_url)

    @api.delete(
        "/schedules/{schedule_id}",
        response_model=Deleted,
        summary="Delete a schedule (its runs stay)",
        responses=errors(404, 422),
    )
    def delete(schedule_id: ScheduleId) -> Deleted:
        context.client.delete_schedule(schedule_id)
        return Deleted(schedule_id=schedule_id)

    return api
