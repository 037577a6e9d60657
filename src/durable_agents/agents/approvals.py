"""Tool approvals inside a turn: which calls wait for a person, and the durable wait for each decision.

The turn records its requests (an in-step activity, so they appear with the step that waits), then
waits for one external event per request. While it waits it is a row in PostgreSQL and holds no
worker slot, for days if need be; a timeout, when set, decides instead of the person.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Generator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from .. import ids
from ..errors import EventTimeoutError
from ..orchestrator.context import OrchestrationContext

if TYPE_CHECKING:
    from .agent import Agent

REQUEST_APPROVALS = "durable_agents.agent_request_approvals"
APPROVAL_TIMED_OUT = "durable_agents.agent_approval_timed_out"


@dataclass(frozen=True)
class ApprovalPolicy:
    """Which tool calls wait for a person's approval, and what happens if none comes in time.

    On an agent (`Agent(approval=ApprovalPolicy(...))`), `tools` names the tools it covers (None: all of
    them, MCP tools too). On a tool (`@app.durable_tool(requires_approval=ApprovalPolicy(...))`) or an
    MCP server, it covers that tool or server and `tools` stays unset. Without `timeout` a call waits
    as long as it takes; with it, `on_timeout` decides, and a rejection tells the model `timeout_reason`.
    """

    tools: Collection[str] | None = None
    timeout: timedelta | None = None
    on_timeout: Literal["reject", "approve"] = "reject"
    timeout_reason: str = "no one approved the call in time"

    def __post_init__(self) -> None:
        if self.timeout is not None and self.timeout <= timedelta(0):
            raise ValueError("ApprovalPolicy(timeout=...) must be positive, or None to wait without end")
        if self.on_timeout not in ("reject", "approve"):
            raise ValueError(f"ApprovalPolicy(on_timeout=...) is 'reject' or 'approve', not {self.on_timeout!r}")
        if isinstance(self.tools, str):
            raise TypeError("ApprovalPolicy(tools=...) takes a list of tool names, not one string")

    def covers(self, tool: str) -> bool:
        return self.tools is None or tool in self.tools


def as_policy(requires_approval: bool | ApprovalPolicy, what: str) -> ApprovalPolicy | None:
    """A tool's or a server's `requires_approval=` as a policy (None: no approval needed)."""
    if isinstance(requires_approval, ApprovalPolicy):
        if requires_approval.tools is not None:
            raise ValueError(f"the ApprovalPolicy of {what} covers it alone: leave ApprovalPolicy(tools=...) unset")
        return requires_approval
    return ApprovalPolicy() if requires_approval else None


def approval_event(approval_id: str) -> str:
    """The event that carries the decision on one request to its turn."""
    return f"tool_approval:{approval_id}"


def policy_for(agent: Agent, tool: str, mcp_server: str | None) -> ApprovalPolicy | None:
    """The policy a call of `tool` falls under: the tool's (or its MCP server's) own, else the agent's."""
    own: ApprovalPolicy | None
    if mcp_server is not None:
        server = agent.mcp_servers.get(mcp_server)
        own = server.approval if server is not None else None
    else:
        spec = agent.tools.get(tool)
        own = spec.approval if spec is not None else None
    if own is not None:
        return own
    if agent.approval is not None and agent.approval.covers(tool):
        return agent.approval
    return None


def decide_calls(
    context: OrchestrationContext,
    agent: Agent,
    identity: dict[str, Any],
    calls: list[dict[str, Any]],
    mcp_tools: dict[str, str],
) -> Generator[Any, Any, dict[str, dict[str, Any]]]:
    """Wait for a decision on every call of this round that needs one; returns them by tool-call id.

    A call whose arguments do not fit the tool is not asked about: the model hears of its mistake instead.
    """
    asks: list[tuple[dict[str, Any], ApprovalPolicy]] = []
    for call in calls:
        name = call["function"]["name"]
        policy = policy_for(agent, name, mcp_tools.get(name))
        if policy is None or (name not in agent.tools and name not in mcp_tools):
            continue
        arguments = _json_arguments(call)
        if arguments is None or not _fits(agent, name, arguments):
            continue
        now = context.current_utc_datetime
        deadline = now + policy.timeout if policy.timeout is not None else None
        ask = {
            "approval_id": ids.tool_approval_id(identity["correlation_id"], call["id"]),
            "tool_call_id": call["id"],
            "tool": name,
            "arguments": arguments,
            "expires_at": deadline.isoformat() if deadline is not None else None,
        }
        asks.append((ask, policy))
    if not asks:
        return {}
    yield context.call_activity(
        REQUEST_APPROVALS, input={**identity, "instance_id": context.instance_id, "asks": [a for a, _ in asks]}
    )
    decisions: dict[str, dict[str, Any]] = {}
    for ask, policy in asks:
        event_name = approval_event(ask["approval_id"])
        if ask["expires_at"] is None:
            decision = yield context.wait_for_external_event(event_name)
        else:
            remaining = max(timedelta(0), datetime.fromisoformat(ask["expires_at"]) - context.current_utc_datetime)
            try:
                decision = yield context.wait_for_external_event(event_name, timeout=remaining)
            except EventTimeoutError:
                decision = yield context.call_activity(
                    APPROVAL_TIMED_OUT,
                    input={
                        "approval_id": ask["approval_id"],
                        "approve": policy.on_timeout == "approve",
                        "reason": policy.timeout_reason,
                    },
                )
        decisions[ask["tool_call_id"]] = decision
    return decisions


def rejection_text(tool: str, decision: dict[str, Any]) -> str:
    """What the model reads back for a rejected call: the person's reason (or the timeout's)."""
    reason = (decision.get("reason") or "").strip()
    who = "its approval timed out" if decision.get("timed_out") else "a person rejected it"
    return f"The call to {tool!r} was not run: {who}." + (f" Reason: {reason}" if reason else "")


def _fits(agent: Agent, tool: str, arguments: dict[str, Any]) -> bool:
    """False for arguments one of the agent's own tools would refuse (an MCP server checks its own)."""
    spec = agent.tools.get(tool)
    if spec is None:
        return True
    try:
        spec.parse_arguments(arguments)
    except ValueError:
        return False
    return True


def _json_arguments(call: dict[str, Any]) -> dict[str, Any] | None:
    raw = call["function"].get("arguments") or "{}"
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
