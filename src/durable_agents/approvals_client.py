"""Tool approvals from a client: list the calls agents wait on, and approve or reject each one once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .agents.approvals import approval_event
from .serialization import encode
from .store import approvals
from .store.approvals import ToolApproval
from .store.db import single_statement, transaction
from .tasks.dispatch import wake

if TYPE_CHECKING:
    from .app import DurableApp
    from .config import Settings


class ToolApprovals:
    """The tool-approval methods of `DurableClient` (and, awaitable, of `AsyncDurableClient`)."""

    app: DurableApp
    settings: Settings
    taskhub: str

    def list_pending_approvals(
        self, *, agent: str | None = None, session: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[ToolApproval]:
        """Tool calls that wait for a person, oldest first (only those whose turn still waits)."""
        with single_statement(self.settings.database_url) as db:
            return approvals.listing(db, self.taskhub, agent=agent, session_key=session, limit=limit, offset=offset)

    def get_approval(self, approval_id: str) -> ToolApproval:
        """One request, pending or decided; ApprovalNotFoundError if there is none of that id."""
        with single_statement(self.settings.database_url) as db:
            return approvals.get(db, self.taskhub, approval_id)

    def approve_tool_call(
        self, approval_id: str, *, arguments: dict[str, Any] | None = None, reason: str | None = None
    ) -> ToolApproval:
        """Let the call run, with `arguments` in place of the model's if given (checked against the tool's
        schema when this client knows the agent). Refused once the request is decided."""
        if arguments is not None:
            if not isinstance(arguments, dict):
                raise ValueError("edited arguments must be a JSON object of the tool's parameters")
            self._check_arguments(approval_id, arguments)
        return self._decide(approval_id, approved=True, arguments=arguments, reason=reason)

    def reject_tool_call(self, approval_id: str, *, reason: str | None = None) -> ToolApproval:
        """Refuse the call: the tool does not run, and the model reads `reason` as its result."""
        return self._decide(approval_id, approved=False, arguments=None, reason=reason)

    def _decide(
        self, approval_id: str, *, approved: bool, arguments: dict[str, Any] | None, reason: str | None
    ) -> ToolApproval:
        limit = self.settings.max_payload_bytes
        encode(arguments, what=f"arguments of approval {approval_id!r}", limit=limit)
        encode(reason, what=f"reason of approval {approval_id!r}", limit=limit)
        with transaction(self.settings.database_url) as db:
            decided = approvals.decide(
                db,
                self.taskhub,
                approval_id,
                approved=approved,
                arguments=arguments,
                reason=reason,
                event_name=approval_event(approval_id),
            )
        wake(self.app, decided.instance_id)
        return decided

    def _check_arguments(self, approval_id: str, arguments: dict[str, Any]) -> None:
        request = self.get_approval(approval_id)
        if request.status != approvals.PENDING:
            return  # the decision below says why it is refused
        agent = self.app.agents.get(request.agent)
        spec = agent.tools.get(request.tool) if agent is not None else None
        if spec is not None:
            spec.parse_arguments(arguments)  # a ValueError naming what is wrong
