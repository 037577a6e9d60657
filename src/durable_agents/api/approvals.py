"""Tool approval routes: the tool calls agents wait on, and approving or rejecting each one once."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import AfterValidator, BaseModel, Field

from ..store.approvals import ToolApproval
from .context import ApiContext
from .problems import ApiError
from .schemas import PRINTABLE, JsonValue, Limit, Offset, Strict, errors, storable

ApprovalId = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="The approval request's id.")
]
Reason = Annotated[
    str | None,
    Field(default=None, max_length=10_000, description="Why; on a rejection the model reads it as the tool's result."),
    AfterValidator(storable),
]


class Approval(BaseModel):
    id: str
    agent: str
    session: str
    correlation_id: str
    tool_call_id: str
    tool: str
    arguments: dict[str, Any]
    status: str = Field(description="pending, approved or rejected")
    requested_at: datetime
    expires_at: datetime | None = Field(description="When the agent's timeout decides instead (null: never)")
    decided_at: datetime | None
    timed_out: bool
    approved_arguments: dict[str, Any] | None = Field(description="The arguments a person edited on approval")
    reason: str | None
    orchestration_instance_id: str | None


class ApprovalPage(BaseModel):
    items: list[Approval]
    limit: int
    offset: int
    next_offset: int | None


class ApproveRequest(Strict):
    arguments: Annotated[
        dict[str, JsonValue] | None, Field(description="Run the tool with these instead"), AfterValidator(storable)
    ] = None
    reason: Reason = None


class RejectRequest(Strict):
    reason: Reason = None


def _approval(request: ToolApproval) -> Approval:
    return Approval(
        id=request.approval_id,
        agent=request.agent,
        session=request.session,
        correlation_id=request.correlation_id,
        tool_call_id=request.tool_call_id,
        tool=request.tool,
        arguments=request.arguments,
        status=request.status,
        requested_at=request.requested_at,
        expires_at=request.expires_at,
        decided_at=request.decided_at,
        timed_out=request.timed_out,
        approved_arguments=request.approved_arguments,
        reason=request.reason,
        orchestration_instance_id=request.orchestration_instance_id,
    )


def approval_routes(context: ApiContext) -> APIRouter:
    api = APIRouter(route_class=context.route_class, tags=["approvals"])

    @api.get("/approvals", response_model=ApprovalPage, summary="Tool calls waiting for a person, oldest first")
    def list_approvals(
        agent: Annotated[str | None, Query(max_length=128, pattern=PRINTABLE, description="Only this agent's")] = None,
        session: Annotated[str | None, Query(max_length=120, pattern=PRINTABLE, description="Only this session's")] = (
            None
        ),
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> ApprovalPage:
        found = context.client.list_pending_approvals(agent=agent, session=session, limit=limit, offset=offset)
        return ApprovalPage(
            items=[_approval(request) for request in found],
            limit=limit,
            offset=offset,
            next_offset=offset + len(found) if len(found) == limit else None,
        )

    @api.get(
        "/approvals/{approval_id}",
        response_model=Approval,
        summary="One request, pending or decided",
        responses=errors(404),
    )
    def get_approval(approval_id: ApprovalId) -> Approval:
        return _approval(context.client.get_approval(approval_id))

    @api.post(
        "/approvals/{approval_id}/approve",
        response_model=Approval,
        summary="Let the call run (with edited arguments if given)",
        responses=errors(404, 409, 413, 422),
    )
    def approve(approval_id: ApprovalId, body: ApproveRequest | None = None) -> Approval:
        body = body or ApproveRequest()
        try:
            decided = context.client.approve_tool_call(approval_id, arguments=body.arguments, reason=body.reason)
        except ValueError as error:  # edited arguments that do not fit the tool
            raise ApiError(422, "invalid_arguments", str(error)) from error
        return _approval(decided)

    @api.post(
        "/approvals/{approval_id}/reject",
        response_model=Approval,
        summary="Refuse the call: the model reads the reason as its result",
        responses=errors(404, 409, 413, 422),
    )
    def reject(approval_id: ApprovalId, body: RejectRequest | None = None) -> Approval:
        reason = body.reason if body is not None else None
        return _approval(context.client.reject_tool_call(approval_id, reason=reason))

    return api
