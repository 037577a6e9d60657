"""Instance routes: start by name, status, list, history, events, terminate, suspend, resume, rewind, restart,
purge."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Request, Response

from ..errors import InstanceNotFoundError, InvalidInstanceStateError, OrchestrationNotRegisteredError
from ..state import OrchestrationState, OrchestrationStatus
from ..tags import parse_tag
from .context import INTERNAL_PREFIX, STATUS_ROUTE, ApiContext
from .problems import ApiError
from .schemas import (
    PRINTABLE,
    Accepted,
    EventName,
    History,
    Instance,
    InstanceId,
    InstancePage,
    JsonValue,
    Limit,
    Moment,
    Names,
    Offset,
    OrchestrationName,
    Purged,
    ReasonRequest,
    RestartRequest,
    StartAccepted,
    StartRequest,
    TerminateRequest,
    errors,
)


def _instance(state: OrchestrationState) -> Instance:
    return Instance.model_validate(state, from_attributes=True)


def instance_routes(context: ApiContext) -> APIRouter:
    api = APIRouter(route_class=context.route_class, tags=["instances"])

    @api.get("/orchestrations", response_model=Names, summary="Orchestration names the API knows")
    def list_orchestrations() -> Names:
        return Names(names=context.orchestration_names())

    @api.post(
        "/orchestrations/{name}",
        status_code=202,
        response_model=StartAccepted,
        summary="Start an orchestration by name",
        responses=errors(404, 409, 413, 422),
    )
    def start_orchestration(
        name: OrchestrationName, request: Request, response: Response, body: StartRequest | None = None
    ) -> StartAccepted:
        """Starts an instance with `input`; answers 202 at once with its id and status URL (also `Location`).
        An `instance_id` already in use answers 409 unless `reuse_id` is set and that instance has finished."""
        if name.startswith(INTERNAL_PREFIX):
            raise OrchestrationNotRegisteredError(name, context.orchestration_names())
        body = body or StartRequest()
        instance_id = context.client.schedule_new_orchestration(
            name,
            input=body.input,
            instance_id=body.instance_id,
            start_at=body.start_at,
            reuse_id=body.reuse_id,
            tags=body.tags,
            version=body.version,
        )
        status_url = context.url(request, STATUS_ROUTE, instance_id=instance_id)
        response.headers["Location"] = status_url
        return StartAccepted(instance_id=instance_id, name=name, status_url=status_url)

    @api.get(
        "/instances",
        response_model=InstancePage,
        summary="List instances, newest first",
        responses=errors(422),
    )
    def list_instances(
        status: Annotated[list[OrchestrationStatus] | None, Query(description="Only these statuses.")] = None,
        name: Annotated[str | None, Query(max_length=256, pattern=PRINTABLE, description="Only this name.")] = None,
        created_from: Annotated[Moment | None, Query(description="Created at or after (UTC if naive).")] = None,
        created_to: Annotated[Moment | None, Query(description="Created before (UTC if naive).")] = None,
        prefix: Annotated[str | None, Query(max_length=256, pattern=PRINTABLE, description="Id prefix.")] = None,
        tag: Annotated[
            list[str] | None,
            Query(
                max_length=1200, description="Only instances with this tag, as name=value (repeat for all of several)."
            ),
        ] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> InstancePage:
        try:
            tags = dict(parse_tag(text) for text in tag or [])
        except ValueError as error:
            raise ApiError(422, "invalid_input", f"invalid tag filter: {error}") from None
        states = context.client.query_instances(
            statuses=status,
            name=name,
            created_from=created_from,
            created_to=created_to,
            instance_id_prefix=prefix,
            tags=tags,
            limit=limit,
            offset=offset,
        )
        return InstancePage(
            items=[_instance(s) for s in states],
            limit=limit,
            offset=offset,
            next_offset=offset + len(states) if len(states) == limit else None,
        )

    @api.get(
        "/instances/{instance_id}",
        name=context.route_name(STATUS_ROUTE),
        operation_id="get_instance",
        response_model=Instance,
        summary="An instance's status, input, output and failure",
        responses=errors(404, 422),
    )
    def get_instance(instance_id: InstanceId) -> Instance:
        state = context.client.get_orchestration_state(instance_id)
        if state is None:
            raise InstanceNotFoundError(instance_id, context.settings.taskhub)
        return _instance(state)

    @api.get(
        "/instances/{instance_id}/history",
        response_model=History,
        summary="An instance's history, oldest first",
        responses=errors(404, 422),
    )
    def get_history(instance_id: InstanceId) -> History:
        return History(instance_id=instance_id, events=context.client.get_history(instance_id))

    @api.post(
        "/instances/{instance_id}/events/{event_name}",
        status_code=202,
        response_model=Accepted,
        summary="Raise an external event (the body is its data)",
        responses=errors(404, 409, 413, 422),
    )
    def raise_event(
        instance_id: InstanceId,
        event_name: EventName,
        request: Request,
        data: Annotated[JsonValue, Body(description="The event's data: any JSON (none: null).")] = None,
    ) -> Accepted:
        """Delivered now if the instance waits for it, buffered until it does otherwise.
        A human approval: `curl -X POST .../events/approval_received -d '{"approved": true}'`."""
        context.client.raise_orchestration_event(instance_id, event_name, data=data)
        return _accepted(context, request, instance_id)

    @api.post(
        "/instances/{instance_id}/terminate",
        status_code=202,
        response_model=Accepted,
        summary="Terminate an instance and its running sub-orchestrations",
        responses=errors(404, 409, 413, 422),
    )
    def terminate(instance_id: InstanceId, request: Request, body: TerminateRequest | None = None) -> Accepted:
        output = body.output if body is not None else None
        if not context.client.terminate_orchestration(instance_id, output=output):
            raise InvalidInstanceStateError(f"instance {instance_id!r} has already finished; there is nothing to stop")
        return _accepted(context, request, instance_id)

    @api.post(
        "/instances/{instance_id}/suspend",
        status_code=202,
        response_model=Accepted,
        summary="Suspend an instance (events wait until it resumes)",
        responses=errors(404, 409, 422),
    )
    def suspend(instance_id: InstanceId, request: Request, body: ReasonRequest | None = None) -> Accepted:
        context.client.suspend_orchestration(instance_id, reason=body.reason if body else None)
        return _accepted(context, request, instance_id)

    @api.post(
        "/instances/{instance_id}/resume",
        status_code=202,
        response_model=Accepted,
        summary="Resume a suspended instance",
        responses=errors(404, 409, 422),
    )
    def resume(instance_id: InstanceId, request: Request, body: ReasonRequest | None = None) -> Accepted:
        context.client.resume_orchestration(instance_id, reason=body.reason if body else None)
        return _accepted(context, request, instance_id)

    @api.post(
        "/instances/{instance_id}/rewind",
        status_code=202,
        response_model=Accepted,
        summary="Rewind a FAILED instance: its failed tasks run again, what succeeded is kept",
        responses=errors(404, 409, 422),
    )
    def rewind(instance_id: InstanceId, request: Request, body: ReasonRequest | None = None) -> Accepted:
        """Deploy the fix first. Any status but FAILED answers 409."""
        context.client.rewind_orchestration(instance_id, reason=body.reason if body else None)
        return _accepted(context, request, instance_id)

    @api.post(
        "/instances/{instance_id}/restart",
        status_code=202,
        response_model=StartAccepted,
        summary="Start a finished instance over with its original input",
        responses=errors(404, 409, 422),
    )
    def restart(
        instance_id: InstanceId, request: Request, response: Response, body: RestartRequest | None = None
    ) -> StartAccepted:
        """Under its own id (replacing it) unless `new_instance_id`; an unfinished instance answers 409."""
        state = context.client.get_orchestration_state(instance_id)
        if state is None:
            raise InstanceNotFoundError(instance_id, context.client.taskhub)
        new_id = context.client.restart_orchestration(
            instance_id, new_instance_id=body.new_instance_id if body else False
        )
        status_url = context.url(request, STATUS_ROUTE, instance_id=new_id)
        response.headers["Location"] = status_url
        return StartAccepted(instance_id=new_id, name=state.name, status_url=status_url)

    @api.delete(
        "/instances/{instance_id}",
        response_model=Purged,
        summary="Purge a finished instance and its history",
        responses=errors(404, 409, 422),
    )
    def purge(instance_id: InstanceId) -> Purged:
        return Purged(instance_id=instance_id, purged=context.client.purge_orchestration(instance_id))

    return api


def _accepted(context: ApiContext, request: Request, instance_id: str) -> Accepted:
    return Accepted(instance_id=instance_id, status_url=context.url(request, STATUS_ROUTE, instance_id=instance_id))
