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
    ".agents.approvals": ("ApprovalPolicy",),
    ".agents.mcp": ("MCPServer",),
    ".app": ("DurableApp",),
    ".client": ("AsyncDurableClient", "DurableClient"),
    ".config": ("Settings",),
    ".explanation": ("Explanation",),
    ".errors": ("ActivityNotRegisteredError", "ActivityTimeoutError", "AgentError", "AgentNotRegisteredError",
                "AgentRunError", "ApprovalDecidedError", "ApprovalNotFoundError", "ConfigurationError",
                "DurableAgentsError", "EntityLockError", "EntityNotRegisteredError", "EntityOperationNotFoundError",
                "EventTimeoutError", "FailureDetails", "IncompleteReplyError",
                "InstanceExistsError", "InstanceNotFoundError", "InvalidInstanceStateError", "ModelCallError",
                "NonDeterminismError", "NotRegisteredError", "OrchestrationNotRegisteredError",
                "OrchestrationYieldError", "PayloadTooLargeError", "ScheduleExistsError", "ScheduleNotFoundError",
                "SchemaMismatchError", "SerializationError", "InvalidScheduleError",
                "SessionNotFoundError", "StructuredOutputError", "TaskCancelledError", "TaskFailedError",
                "ToolLoopError", "VersionMismatchError", "WaitTimeoutError"),
    ".ids": ("EntityId",),
    ".orchestrator": ("OrchestrationContext", "RetryPolicy", "Task", "VersioningOptions"),
    ".orchestrator.entities": ("EntityLock",),
    ".registry": ("ActivityContext", "current_activity"),
    ".schedule_state": ("ScheduleState",),
    ".state": ("OrchestrationState", "OrchestrationStatus"),
    ".store.approvals": ("ToolApproval",),
    ".store.entities": ("EntityState",),
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
    from .agents.approvals import ApprovalPolicy
    from .agents.mcp import MCPServer
    from .app import DurableApp
    from .client import AsyncDurableClient, DurableClient
    from .config import Settings
    from .errors import (
        ActivityNotRegisteredError,
        ActivityTimeoutError,
        AgentError,
        AgentNotRegisteredError,
        AgentRunError,
        ApprovalDecidedError,
        ApprovalNotFoundError,
        ConfigurationError,
        DurableAgentsError,
        EntityLockError,
        EntityNotRegisteredError,
        EntityOperationNotFoundError,
        EventTimeoutError,
        FailureDetails,
        IncompleteReplyError,
        InstanceExistsError,
        InstanceNotFoundError,
        InvalidInstanceStateError,
        InvalidScheduleError,
        ModelCallError,
        NonDeterminismError,
        NotRegisteredError,
        OrchestrationNotRegisteredError,
        OrchestrationYieldError,
        PayloadTooLargeError,
        ScheduleExistsError,
        ScheduleNotFoundError,
        SchemaMismatchError,
        SerializationError,
        SessionNotFoundError,
        StructuredOutputError,
        TaskCancelledError,
        TaskFailedError,
        ToolLoopError,
        VersionMismatchError,
        WaitTimeoutError,
    )
    from .explanation import Explanation
    from .ids import EntityId
    from .orchestrator import OrchestrationContext, RetryPolicy, Task, VersioningOptions
    from .orchestrator.entities import EntityLock
    from .registry import ActivityContext, current_activity
    from .schedule_state import ScheduleState
    from .state import OrchestrationState, OrchestrationStatus
    from .store.approvals import ToolApproval
    from .store.entities import EntityState
    from .store.sessions import SessionInfo
    from .store.workers import WorkerInfo

    AgentFunctionApp = DurableApp
    DurableOrchestrationContext = OrchestrationContext
else:
    __getattr__, __dir__ = lazy_exports(__name__, globals(), _MODULES, _ALIASES)

__all__ = [
    "ActivityContext",
    "ActivityNotRegisteredError",
    "ActivityTimeoutError",
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
    "ApprovalDecidedError",
    "ApprovalNotFoundError",
    "ApprovalPolicy",
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
    "EntityId",
    "EntityLock",
    "EntityLockError",
    "EntityNotRegisteredError",
    "EntityOperationNotFoundError",
    "EntityState",
    "EventTimeoutError",
    "Explanation",
    "FailureDetails",
    "IncompleteReplyError",
    "InstanceExistsError",
    "InstanceNotFoundError",
    "InvalidInstanceStateError",
    "InvalidScheduleError",
    "KeepLast",
    "MCPServer",
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
    "ScheduleExistsError",
    "ScheduleNotFoundError",
    "ScheduleState",
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
    "ToolApproval",
    "ToolLoopError",
    "Usage",
    "VersionMismatchError",
    "VersioningOptions",
    "WaitTimeoutError",
    "WorkerInfo",
    "__version__",
    "chat_client_from_env",
    "current_activity",
]
