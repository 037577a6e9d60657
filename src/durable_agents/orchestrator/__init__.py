"""The replay engine: orchestration context, tasks, history and determinism checks. Pure Python, no I/O."""

from .context import OrchestrationContext
from .executor import ReplayExecutor, StepResult
from .retry import RetryPolicy
from .tasks import Task

__all__ = ["OrchestrationContext", "ReplayExecutor", "RetryPolicy", "StepResult", "Task"]
