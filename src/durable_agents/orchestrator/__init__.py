"""The replay engine: orchestration context, tasks, history and determinism checks. Pure Python, no I/O."""

from .context import OrchestrationContext, StartIfMissing
from .executor import ReplayExecutor, StepResult
from .retry import RetryPolicy
from .tasks import Task
from .versions import VersioningOptions

__all__ = [
    "OrchestrationContext",
    "ReplayExecutor",
    "RetryPolicy",
    "StartIfMissing",
    "StepResult",
    "Task",
    "VersioningOptions",
]
