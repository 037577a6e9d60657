"""Durable agents: model clients, agents with tools, sessions, and running them in and out of orchestrations."""

from .agent import Agent, KeepLast, Summarize
from .chat_client import AzureOpenAIChatClient, ChatClient, OpenAIChatClient
from .client import AgentProxy, DurableAgentClient, DurableAIAgentClient
from .environment import chat_client_from_env
from .proxy import OrchestrationAgent
from .response import AgentResponse, AgentSession, Usage
from .tools import ToolSpec

__all__ = [
    "Agent",
    "AgentProxy",
    "AgentResponse",
    "AgentSession",
    "AzureOpenAIChatClient",
    "ChatClient",
    "DurableAIAgentClient",
    "DurableAgentClient",
    "KeepLast",
    "OpenAIChatClient",
    "OrchestrationAgent",
    "Summarize",
    "ToolSpec",
    "Usage",
    "chat_client_from_env",
]
