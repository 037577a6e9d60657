"""Tool approval requests: written by the waiting turn, decided once (by a person or by the timeout)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..errors import ApprovalDecidedError, ApprovalNotFoundError
from ..models import Instance, ToolApprovalRow
from ..state import TERMINAL
from . import dialect, instances

PENDING = "pending"
APPROVED = "approved"
REJECTED = "rejected"


@dataclass(frozen=True)
class ToolApproval:
    """A tool call an agent's turn waits on: what it would run, for whom, and what was decided."""

    approval_id: str
    agent: str
    session: str
    correlation_id: str
    tool_call_id: str
    tool: str
    arguments: dict[str, Any]
    status: str
    requested_at: datetime
    expires_at: datetime | None
    decided_at: datetime | None
    timed_out: bool
    approved_arguments: dict[str, Any] | None
    reason: str | None
    orchestration_instance_id: str | None
    instance_id: str

    def decision(self) -> dict[str, Any]:
        """What the waiting turn reads: approved or not, with which arguments, and why."""
        return {
            "approved": self.status == APPROVED,
            "arguments": self.approved_arguments,
            "reason": self.reason,
            "timed_out": self.timed_out,
        }


def _view(row: ToolApprovalRow) -> ToolApproval:
    return ToolApproval(
        approval_id=row.approval_id,
        agent=row.agent,
        session=row.session_key,
        correlation_id=row.correlation_id,
        tool_call_id=row.tool_call_id,
        tool=row.tool,
        arguments=row.arguments,
        status=row.status,
        requested_at=row.requested_at,
        expires_at=row.expires_at,
        decided_at=row.decided_at,
        timed_out=row.timed_out,
        approved_arguments=row.approved_arguments,
        reason=row.reason,
        orchestration_instance_id=row.orchestration_instance_id,
        instance_id=row.instance_id,
    )


def request(session: Session, taskhub: str, instance_id: str, turn: dict[str, Any], asks: list[dict[str, Any]]) -> None:
    """Record the turn's requests (once: a step that runs again writes nothing new)."""
    now = dialect.of(session).current_time(session)
    rows = [
        {
            "taskhub": taskhub,
            "approval_id": ask["approval_id"],
            "instance_id": instance_id,
            "agent": turn["agent"],
            "session_key": turn["session"],
            "correlation_id": turn["correlation_id"],
            "tool_call_id": ask["tool_call_id"],
            "tool": ask["tool"],
            "arguments": ask["arguments"],
            "orchestration_instance_id": turn.get("orchestration_instance_id"),
            "status": PENDING,
            "requested_at": now,
            "expires_at": datetime.fromisoformat(ask["expires_at"]) if ask.get("expires_at") else None,
            "timed_out": False,
        }
        for ask in asks
    ]
    insert = dialect.of(session).insert(ToolApprovalRow.__table__)
    session.execute(insert.values(rows).on_conflict_do_nothing(index_elements=["taskhub", "approval_id"]))


def listing(
    session: Session,
    taskhub: str,
    *,
    agent: str | None = None,
    session_key: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[ToolApproval]:
    """Pending requests whose turn still waits, oldest first."""
    statement = (
        select(ToolApprovalRow)
        .join(
            Instance,
            (Instance.taskhub == ToolApprovalRow.taskhub) & (Instance.instance_id == ToolApprovalRow.instance_id),
        )
        .where(
            ToolApprovalRow.taskhub == taskhub,
            ToolApprovalRow.status == PENDING,
            Instance.status.not_in(TERMINAL),
        )
    )
    if agent is not None:
        statement = statement.where(ToolApprovalRow.agent == agent)
    if session_key is not None:
        statement = statement.where(ToolApprovalRow.session_key == session_key)
    statement = statement.order_by(
        ToolApprovalRow.requested_at, ToolApprovalRow.correlation_id, ToolApprovalRow.tool_call_id
    )
    return [_view(row) for row in session.scalars(statement.limit(limit).offset(offset))]


def get(session: Session, taskhub: str, approval_id: str) -> ToolApproval:
    row = session.get(ToolApprovalRow, (taskhub, approval_id))
    if row is None:
        raise ApprovalNotFoundError(approval_id, taskhub)
    return _view(row)


def decide(
    session: Session,
    taskhub: str,
    approval_id: str,
    *,
    approved: bool,
    arguments: dict[str, Any] | None,
    reason: str | None,
    event_name: str,
) -> ToolApproval:
    """A person's decision: recorded once, and sent to the waiting turn in the same transaction."""
    row = session.scalars(
        select(ToolApprovalRow)
        .where(ToolApprovalRow.taskhub == taskhub, ToolApprovalRow.approval_id == approval_id)
        .with_for_update()
    ).first()
    if row is None:
        raise ApprovalNotFoundError(approval_id, taskhub)
    if row.status != PENDING:
        how = "by its timeout" if row.timed_out else "already"
        raise ApprovalDecidedError(
            f"tool approval request {approval_id!r} ({row.tool} for agent {row.agent!r}) was {row.status} {how}; "
            "a decision cannot be changed"
        )
    turn = instances.require(session, taskhub, row.instance_id)
    if turn.status in TERMINAL:
        raise ApprovalDecidedError(
            f"tool approval request {approval_id!r}: its turn {row.instance_id!r} is {turn.status} and no longer waits"
        )
    row.status = APPROVED if approved else REJECTED
    row.decided_at = dialect.of(session).current_time(session)
    row.approved_arguments = arguments if approved else None
    row.reason = reason
    view = _view(row)
    instances.raise_event(session, taskhub, row.instance_id, event_name, view.decision())
    return view


def decide_on_timeout(
    session: Session, taskhub: str, approval_id: str, *, approve: bool, reason: str
) -> dict[str, Any]:
    """The timeout's decision, unless a person's came first (then that one stands)."""
    now = dialect.of(session).current_time(session)
    session.execute(
        update(ToolApprovalRow)
        .where(
            ToolApprovalRow.taskhub == taskhub,
            ToolApprovalRow.approval_id == approval_id,
            ToolApprovalRow.status == PENDING,
        )
        .values(status=APPROVED if approve else REJECTED, decided_at=now, timed_out=True, reason=reason)
    )
    return get(session, taskhub, approval_id).decision()
