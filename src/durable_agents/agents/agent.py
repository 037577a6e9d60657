"""An agent: a name, instructions, a model client, tools, and how its sessions are kept."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .approvals import ApprovalPolicy
from .mcp import MCPServer
from .tools import ToolSpec, tool_spec

if TYPE_CHECKING:
    from .chat_client import ChatClient

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class KeepLast:
    """Send the model only the last `messages` messages of a session (the stored history is kept whole)."""

    messages: int

    def __post_init__(self) -> None:
        if self.messages < 1:
            raise ValueError("KeepLast(messages=...) must keep at least one message")


@dataclass(frozen=True)
class Summarize:
    """Keep long sessions under the context window by letting the agent's model summarise them.

    Once more than `max_messages` messages follow the last summary, all but the last `keep_last`
    are summarised (together with the previous summary); the model then sees the summary and the
    recent messages. The stored conversation is kept whole.
    """

    keep_last: int = 10
    max_messages: int = 30
    instructions: str = (
        "Summarise the conversation so far in a few sentences. Keep every fact, name, number and "
        "decision the assistant may need later."
    )

    def __post_init__(self) -> None:
        if self.keep_last < 1 or self.max_messages <= self.keep_last:
            raise ValueError("Summarize needs keep_last >= 1 and max_messages > keep_last")


class Agent:
    def __init__(
        self,
        *,
        name: str,
        instructions: str,
        chat_client: ChatClient,
        tools: Sequence[Any] = (),
        max_tool_rounds: int = 8,
        history: KeepLast | Summarize | None = None,
        session_ttl: timedelta | None = None,
        approval: ApprovalPolicy | None = None,
        queue: str | None = None,
    ) -> None:
        """`tools` are functions, tools made by `app.durable_tool` or `app.orchestration_tool`, and
        `MCPServer`s (whose tools the workers list); `approval` says which calls wait for a person.
        `queue` is a short queue name of the task hub (`durable_agents.<hub>.NAME`) for the agent's model,
        tool and MCP calls, served by workers started with `-Q NAME`; by default the `agents` queue."""
        if not _NAME.match(name):
            raise ValueError(
                f"agent name {name!r} is invalid: use 1-128 letters, digits, '_', '.' or '-', starting with "
                "a letter or digit"
            )
        if max_tool_rounds < 1:
            raise ValueError("max_tool_rounds must be at least 1")
        self.name = name
        self.instructions = instructions
        self.chat_client = chat_client
        self.tools: dict[str, ToolSpec] = {}
        self.mcp_servers: dict[str, MCPServer] = {}
        for tool in tools:
            if isinstance(tool, MCPServer):
                if tool.name in self.mcp_servers:
                    raise ValueError(f"agent {name!r} has two MCP servers named {tool.name!r}: give one a name=")
                self.mcp_servers[tool.name] = tool
                continue
            spec = tool_spec(tool)
            if spec.name in self.tools:
                raise ValueError(f"agent {name!r} has two tools named {spec.name!r}")
            self.tools[spec.name] = spec
        self.max_tool_rounds = max_tool_rounds
        if approval is not None and approval.tools is not None and not self.mcp_servers:
            unknown = sorted(set(approval.tools) - set(self.tools))
            if unknown:
                raise ValueError(
                    f"agent {name!r}: ApprovalPolicy(tools=...) names {unknown}, which are not its tools "
                    f"({', '.join(self.tools) or 'none'})"
                )
        self.approval = approval
        self.history = history
        self.session_ttl = session_ttl
        from ..celery_config import check_queue_name  # here: the agent's module loads no Celery

        #: The queue role of the agent's calls: "agents", or the queue it names.
        self.queue_role = check_queue_name(queue) if queue is not None else "agents"

    def __repr__(self) -> str:
        return f"<Agent {self.name!r} model={self.chat_client.model!r} tools={[*self.tools, *self.mcp_servers]}>"
