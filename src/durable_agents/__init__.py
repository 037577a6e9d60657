"""durable-agents: long-running, stateful AI-agent workflows that survive crashes, on Celery, Postgres and Redis."""

from .app import DurableApp
from .client import AsyncDurableClient, DurableClient
from .config import Settings
from .errors import (
    ActivityNotRegisteredError,
    ConfigurationError,
    DurableAgentsError,
    EventTimeoutError,
    FailureDetails,
    InstanceExistsError,
    InstanceNotFoundError,
    InvalidInstanceStateError,
    NonDeterminismError,
    NotRegisteredError,
    OrchestrationNotRegisteredError,
    OrchestrationYieldError,
    PayloadTooLargeError,
    SchemaMismatchError,
    SerializationError,
    TaskFailedError,
    WaitTimeoutError,
)
from .orchestrator import OrchestrationContext, RetryPolicy, Task
from .registry import ActivityContext
from .state import OrchestrationState, OrchestrationStatus
from .tasks.activity import current_activity

__version__ = "0.1.0"

__all__ = [
    "ActivityContext",
    "ActivityNotRegisteredError",
    "AsyncDurableClient",
    "ConfigurationError",
    "DurableAgentsError",
    "DurableApp",
    "DurableClient",
    "EventTimeoutError",
    "FailureDetails",
    "InstanceExistsError",
    "InstanceNotFoundError",
    "InvalidInstanceStateError",
    "NonDeterminismError",
    "NotRegisteredError",
    "OrchestrationContext",
    "OrchestrationNotRegisteredError",
    "OrchestrationState",
    "OrchestrationStatus",
    "OrchestrationYieldError",
    "PayloadTooLargeError",
    "RetryPolicy",
    "SchemaMismatchError",
    "SerializationError",
    "Settings",
    "Task",
    "TaskFailedError",
    "WaitTimeoutError",
    "__version__",
    "current_activity",
]
