"""Durable agents: model clients, agents with tools, sessions, and running them in and out of orchestrations.

Names load on first use, so the orchestration-side modules (`agents.proxy`) load without openai.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..exports import lazy_exports

_MODULES: dict[str, tuple[str, ...]] = {
    ".agent": ("Agent", "KeepLast", "Summarize"),
    ".callbacks": ("AgentCallbackContext", "AgentResponseCallback", "AgentResponseCallbackProtocol"),
    ".approvals": ("ApprovalPolicy",),
    ".mcp": ("MCPServer",),
    ".chat_client": ("AzureOpenAIChatClient", "ChatClient", "OpenAIChatClient"),
    ".client": ("AgentProxy", "DurableAgentClient", "DurableAIAgentClient"),
    ".environment": ("chat_client_from_env",),
    ".proxy": ("OrchestrationAgent",),
    ".response": ("AgentResponse", "AgentSession", "Usage"),
    ".tools": ("ToolSpec",),
    ".worker": ("DurableAIAgentWorker",),
}

if TYPE_CHECKING:
    from .agent import Agent, KeepLast, Summarize
    from .approvals import ApprovalPolicy
    from .callbacks import AgentCallbackContext, AgentResponseCallback, AgentResponseCallbackProtocol
    from .chat_client import AzureOpenAIChatClient, ChatClient, OpenAIChatClient
    from .client import AgentProxy, DurableAgentClient, DurableAIAgentClient
    from .environment import chat_client_from_env
    from .mcp import MCPServer
    from .proxy import OrchestrationAgent
    from .response import AgentResponse, AgentSession, Usage
    from .tools import ToolSpec
    from .worker import DurableAIAgentWorker
else:
    __getattr__, __dir__ = lazy_exports(__name__, globals(), _MODULES)

__all__ = [
    "Agent",
    "AgentCallbackContext",
    "AgentProxy",
    "AgentResponse",
    "AgentResponseCallback",
    "AgentResponseCallbackProtocol",
    "AgentSession",
    "ApprovalPolicy",
    "AzureOpenAIChatClient",
    "ChatClient",
    "DurableAIAgentClient",
    "DurableAIAgentWorker",
    "DurableAgentClient",
    "KeepLast",
    "MCPServer",
    "OpenAIChatClient",
    "OrchestrationAgent",
    "Summarize",
    "ToolSpec",
    "Usage",
    "chat_client_from_env",
]
