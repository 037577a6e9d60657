"""durable-agents: long-running, stateful AI-agent workflows that survive crashes, on Celery, Postgres and Redis.

Public names load on first use: `import durable_agents` (or the pure engine, `durable_agents.orchestrator`)
loads neither Celery nor SQLAlchemy, openai or redis until a name that needs them is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .exports import lazy_exports

__version__ = "0.1.0"

#: The modules that define the public names.
_MODULES: dict[str, tuple[str, ...]] = {
    ".agents": ("Agent", "AgentCallbackContext", "AgentResponse", "AgentResponseCallback",
                "AgentResponseCallbackProtocol", "AgentSession", "AzureOpenAIChatClient", "DurableAgentClient",
                "DurableAIAgentClient", "DurableAIAgentWorker", "KeepLast", "OpenAIChatClient", "Summarize", "Usage",
                "chat_client_from_env"),
    ".app": ("DurableApp",),
    ".client": ("AsyncDurableClient", "DurableClient"),
    ".config": ("Settings",),
    ".diagnosis": ("Explanation",),
    ".errors": ("ActivityNotRegisteredError", "AgentError", "AgentNotRegisteredError", "AgentRunError",
                "ConfigurationError", "DurableAgentsError", "EventTimeoutError", "FailureDetails",
                "IncompleteReplyError", "InstanceExistsError", "InstanceNotFoundError", "InvalidInstanceStateError",
                "ModelCallError", "NonDeterminismError", "NotRegisteredError", "OrchestrationNotRegisteredError",
                "OrchestrationYieldError", "PayloadTooLargeError", "SchemaMismatchError", "SerializationError",
                "SessionNotFoundError", "StructuredOutputError", "TaskCancelledError", "TaskFailedError",
                "ToolLoopError", "WaitTimeoutError"),
    ".orchestrator": ("OrchestrationContext", "RetryPolicy", "Task"),
    ".registry": ("ActivityContext", "current_activity"),
    ".state": ("OrchestrationState", "OrchestrationStatus"),
    ".store.sessions": ("SessionInfo",),
    ".store.workers": ("WorkerInfo",),
}  # fmt: skip

#: The spellings of the reference samples, so their code runs with only the imports changed.
_ALIASES = {"AgentFunctionApp": "DurableApp", "DurableOrchestrationContext": "OrchestrationContext"}

if TYPE_CHECKING:
    from .agents import (
        Agent,
        AgentCallbackContext,
        AgentResponse,
        AgentResponseCallback,
        AgentResponseCallbackProtocol,
        AgentSession,
        AzureOpenAIChatClient,
        DurableAgentClient,
        DurableAIAgentClient,
        DurableAIAgentWorker,
        KeepLast,
        OpenAIChatClient,
        Summarize,
        Usage,
        chat_client_from_env,
    )
    from .app import DurableApp
    from .client import AsyncDurableClient, DurableClient
    from .config import Settings
    from .diagnosis import Explanation
    from .errors import (
        ActivityNotRegisteredError,
        AgentError,
        AgentNotRegisteredError,
        AgentRunError,
        ConfigurationError,
        DurableAgentsError,
        EventTimeoutError,
        FailureDetails,
        IncompleteReplyError,
        InstanceExistsError,
        InstanceNotFoundError,
        InvalidInstanceStateError,
        ModelCallError,
        NonDeterminismError,
        NotRegisteredError,
        OrchestrationNotRegisteredError,
        OrchestrationYieldError,
        PayloadTooLargeError,
        SchemaMismatchError,
        SerializationError,
        SessionNotFoundError,
        StructuredOutputError,
        TaskCancelledError,
        TaskFailedError,
        ToolLoopError,
        WaitTimeoutError,
    )
    from .orchestrator import OrchestrationContext, RetryPolicy, Task
    from .registry import ActivityContext, current_activity
    from .state import OrchestrationState, OrchestrationStatus
    from .store.sessions import SessionInfo
    from .store.workers import WorkerInfo

    AgentFunctionApp = DurableApp
    DurableOrchestrationContext = OrchestrationContext
else:
    __getattr__, __dir__ = lazy_exports(__name__, globals(), _MODULES, _ALIASES)

__all__ = [
    "ActivityContext",
    "ActivityNotRegisteredError",
    "Agent",
    "AgentCallbackContext",
    "AgentError",
    "AgentFunctionApp",
    "AgentNotRegisteredError",
    "AgentResponse",
    "AgentResponseCallback",
    "AgentResponseCallbackProtocol",
    "AgentRunError",
    "AgentSession",
    "AsyncDurableClient",
    "AzureOpenAIChatClient",
    "ConfigurationError",
    "DurableAIAgentClient",
    "DurableAIAgentWorker",
    "DurableAgentClient",
    "DurableAgentsError",
    "DurableApp",
    "DurableClient",
    "DurableOrchestrationContext",
    "EventTimeoutError",
    "Explanation",
    "FailureDetails",
    "IncompleteReplyError",
    "InstanceExistsError",
    "InstanceNotFoundError",
    "InvalidInstanceStateError",
    "KeepLast",
    "ModelCallError",
    "NonDeterminismError",
    "NotRegisteredError",
    "OpenAIChatClient",
    "OrchestrationContext",
    "OrchestrationNotRegisteredError",
    "OrchestrationState",
    "OrchestrationStatus",
    "OrchestrationYieldError",
    "PayloadTooLargeError",
    "RetryPolicy",
    "SchemaMismatchError",
    "SerializationError",
    "SessionInfo",
    "SessionNotFoundError",
    "Settings",
    "StructuredOutputError",
    "Summarize",
    "Task",
    "TaskCancelledError",
    "TaskFailedError",
    "ToolLoopError",
    "Usage",
    "WaitTimeoutError",
    "WorkerInfo",
    "__version__",
    "chat_client_from_env",
    "current_activity",
]
