"""The approvals page: tool calls agents wait on, each with Approve (arguments editable) and Reject (a reason)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..errors import ApprovalDecidedError, ApprovalNotFoundError, DurableAgentsError
from .context import Dashboard, Form, page_route

PAGE_SIZE = 100


def routes(dash: Dashboard) -> APIRouter:
    router = APIRouter(include_in_schema=False, route_class=page_route(dash))

    @router.get("/approvals")
    def approvals_page(request: Request) -> Response:
        agent = request.query_params.get("agent", "").strip() or None
        pending = dash.client.list_pending_approvals(agent=agent, limit=PAGE_SIZE)
        return dash.renderer.render(
            request, "approvals.html", nav="approvals", pending=pending, agent=agent or "", now=datetime.now(UTC)
        )

    def decide(request: Request, approval_id: str, form: dict[str, str], approve: bool) -> Response:
        reason = (form.get("reason") or "").strip() or None
        try:
            if approve:
                edited = _edited_arguments(dash, approval_id, form.get("arguments") or "")
                decided = dash.client.approve_tool_call(approval_id, arguments=edited, reason=reason)
            else:
                decided = dash.client.reject_tool_call(approval_id, reason=reason)
        except ApprovalNotFoundError as error:
            return dash.message(request, str(error), 404)
        except ApprovalDecidedError as error:
            return dash.message(request, str(error), 409)
        except (ValueError, DurableAgentsError) as error:  # arguments that do not fit, a payload over the limit
            return dash.message(request, str(error), 422)
        return dash.done(request, "/approvals", f"{decided.tool} call {decided.status}")

    @router.post("/approvals/{approval_id}/approve")
    def approve(request: Request, approval_id: str, form: Form) -> Response:
        return decide(request, approval_id, form, approve=True)

    @router.post("/approvals/{approval_id}/reject")
    def reject(request: Request, approval_id: str, form: Form) -> Response:
        return decide(request, approval_id, form, approve=False)

    return router


def _edited_arguments(dash: Dashboard, approval_id: str, text: str) -> dict[str, Any] | None:
    """The form's arguments if a person changed them (None: run the model's as they are)."""
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"The arguments are not valid JSON: {error.msg} (line {error.lineno}).") from None
    if not isinstance(value, dict):
        raise ValueError("The arguments must be a JSON object of the tool's parameters.")
    original = dash.client.get_approval(approval_id).arguments
    return None if value == original else value
