"""Tool approval commands: list the tool calls agents wait on, show one, approve or reject it."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from ..store.approvals import ToolApproval
from .common import (
    AppOption,
    JsonOption,
    TaskhubOption,
    console,
    emit_json,
    fail,
    make_client,
    note,
    parse_json,
    summary,
    when,
)

app = typer.Typer(
    help="Tool calls waiting for a person: list them, approve (optionally with edited arguments) or reject.",
    no_args_is_help=True,
)

ApprovalId = Annotated[str, typer.Argument(metavar="ID", help="The request's id (from `approvals list`).")]
ReasonOption = Annotated[
    str | None, typer.Option("--reason", "-r", help="Why; the model reads it as the tool's result on a rejection.")
]


def approval_json(request: ToolApproval) -> dict[str, Any]:
    def moment(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": request.approval_id,
        "agent": request.agent,
        "session": request.session,
        "correlation_id": request.correlation_id,
        "tool_call_id": request.tool_call_id,
        "tool": request.tool,
        "arguments": request.arguments,
        "status": request.status,
        "requested_at": moment(request.requested_at),
        "expires_at": moment(request.expires_at),
        "decided_at": moment(request.decided_at),
        "timed_out": request.timed_out,
        "approved_arguments": request.approved_arguments,
        "reason": request.reason,
        "orchestration_instance_id": request.orchestration_instance_id,
    }


@app.command("list")
def list_approvals(
    agent: Annotated[str | None, typer.Option("--agent", help="Only this agent's requests.")] = None,
    session: Annotated[str | None, typer.Option("--session", help="Only this session's requests.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 50,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Skip this many (for paging).")] = 0,
    taskhub: TaskhubOption = None,
    app_spec: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the pending requests, oldest first.

    Example: durable-agents approvals list --agent Janitor
    """
    found = make_client(taskhub, app_spec).list_pending_approvals(
        agent=agent, session=session, limit=limit, offset=offset
    )
    if as_json:
        emit_json([approval_json(request) for request in found])
        return
    if not found:
        note("no tool calls wait for approval")
        return
    table = Table("id", "agent", "session", "tool", "arguments", "requested", "expires")
    for request in found:
        table.add_row(
            request.approval_id,
            request.agent,
            request.session,
            request.tool,
            summary(request.arguments, 60),
            when(request.requested_at),
            when(request.expires_at),
        )
    console.print(table)


@app.command("show")
def show(approval_id: ApprovalId, taskhub: TaskhubOption = None, app_spec: AppOption = None) -> None:
    """Print one request, pending or decided, as JSON.

    Example: durable-agents approvals show 3f2a9c...
    """
    emit_json(approval_json(make_client(taskhub, app_spec).get_approval(approval_id)))


@app.command("approve")
def approve(
    approval_id: ApprovalId,
    arguments: Annotated[
        str | None, typer.Option("--arguments", "-a", help="Run the tool with these arguments instead (a JSON object).")
    ] = None,
    reason: ReasonOption = None,
    taskhub: TaskhubOption = None,
    app_spec: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """Let the call run (with edited arguments if given); the turn goes on.

    Example: durable-agents approvals approve 3f2a9c... --arguments '{"path": "tmp/cache"}'
    """
    edited = parse_json(arguments, "--arguments")
    if edited is not None and not isinstance(edited, dict):
        fail('--arguments must be a JSON object of the tool\'s parameters, like \'{"path": "tmp"}\'')
    decided = make_client(taskhub, app_spec, publishes=True).approve_tool_call(
        approval_id, arguments=edited, reason=reason
    )
    _acknowledge(decided, as_json)


@app.command("reject")
def reject(
    approval_id: ApprovalId,
    reason: ReasonOption = None,
    taskhub: TaskhubOption = None,
    app_spec: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """Refuse the call: the tool does not run, and the model reads the reason instead.

    Example: durable-agents approvals reject 3f2a9c... --reason "not on a Friday"
    """
    decided = make_client(taskhub, app_spec, publishes=True).reject_tool_call(approval_id, reason=reason)
    _acknowledge(decided, as_json)


def _acknowledge(decided: ToolApproval, as_json: bool) -> None:
    if as_json:
        emit_json(approval_json(decided))
    else:
        console.print(f"{decided.tool} call of agent {decided.agent!r} {decided.status} ({decided.approval_id})")
