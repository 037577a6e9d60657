"""Every error durable-agents raises, in one tree.

    DurableAgentsError
    ├── ConfigurationError            bad settings, or a database whose schema does not match
    │   └── SchemaMismatchError       run `durable-agents db upgrade` (or upgrade the package)
    ├── SerializationError            a value that is not JSON (also a TypeError)
    │   └── PayloadTooLargeError      a payload over the configured size limit
    ├── NotRegisteredError            a name no app registered (also a LookupError)
    │   ├── OrchestrationNotRegisteredError
    │   └── ActivityNotRegisteredError
    ├── InstanceNotFoundError         no such instance in this task hub (also a LookupError)
    ├── InstanceExistsError           an explicit instance id that is already in use
    ├── InvalidInstanceStateError     the operation does not fit the instance's status
    ├── WaitTimeoutError              a client wait ran out (also a TimeoutError)
    ├── TaskFailedError               an activity or sub-orchestration failed (inside an orchestration)
    ├── TaskCancelledError            a task the orchestration cancelled was yielded (inside an orchestration)
    ├── EventTimeoutError             wait_for_external_event(timeout=) ran out (also a TimeoutError)
    ├── NonDeterminismError           orchestration code no longer matches its recorded history
    ├── OrchestrationYieldError       an orchestration yielded something that is not a task
    └── AgentError                    an agent turn went wrong
        ├── AgentNotRegisteredError   no agent of that name (also a NotRegisteredError)
        ├── ModelCallError            the model endpoint refused or failed, after retries
        ├── ToolLoopError             a turn asked for tools more rounds than allowed
        ├── StructuredOutputError     the reply never matched the requested response_format
        ├── SessionNotFoundError      no such session in this task hub (also a LookupError)
        ├── StreamNotFoundError       no response stream of that id in this task hub (also a LookupError)
        └── AgentRunError             a turn failed; `details` says why (raised to the client)

Every message says what happened and what to do about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FailureDetails:
    """Why a task or an orchestration failed: the original error's type, message and traceback."""

    error_type: str
    message: str
    stack_trace: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"error_type": self.error_type, "message": self.message, "stack_trace": self.stack_trace}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FailureDetails:
        return cls(str(data["error_type"]), str(data["message"]), data.get("stack_trace"))

    @classmethod
    def from_exception(cls, error: BaseException) -> FailureDetails:
        import traceback

        if isinstance(error, TaskFailedError):
            # Keep the innermost cause: the orchestration failed *because* an activity failed.
            return error.details
        stack = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        return cls(type(error).__name__, str(error), stack)

    def __str__(self) -> str:
        return f"{self.error_type}: {self.message}"


class DurableAgentsError(Exception):
    """Base class of every error raised by durable-agents."""


class ConfigurationError(DurableAgentsError):
    """The settings are wrong or a service cannot be used as configured."""


class SchemaMismatchError(ConfigurationError):
    """The database schema is missing, older or newer than this version of durable-agents expects."""


class SerializationError(DurableAgentsError, TypeError):
    """A value cannot be stored as JSON."""


class PayloadTooLargeError(SerializationError):
    """A payload is larger than the configured limit (`DURABLE_AGENTS_MAX_PAYLOAD_BYTES`)."""

    def __init__(self, what: str, size: int, limit: int) -> None:
        self.what = what
        self.size = size
        self.limit = limit
        super().__init__(
            f"{what} is {size:,} bytes of JSON, over the limit of {limit:,} bytes. "
            "Store large data elsewhere (a blob store, a table) and pass a reference, "
            "or raise DURABLE_AGENTS_MAX_PAYLOAD_BYTES."
        )


class NotRegisteredError(DurableAgentsError, LookupError):
    """A name that no orchestration or activity was registered under."""

    kind = "name"

    def __init__(self, name: str, registered: list[str] | None = None) -> None:
        self.name = name
        known = ", ".join(sorted(registered)) if registered else "none"
        super().__init__(
            f"no {self.kind} named {name!r} is registered (registered: {known}). "
            f"Check the spelling, or register it with @app.{self.kind.split()[0]}."
        )


class OrchestrationNotRegisteredError(NotRegisteredError):
    kind = "orchestration"


class ActivityNotRegisteredError(NotRegisteredError):
    kind = "activity"


class InstanceNotFoundError(DurableAgentsError, LookupError):
    def __init__(self, instance_id: str, taskhub: str) -> None:
        self.instance_id = instance_id
        self.taskhub = taskhub
        super().__init__(
            f"no orchestration instance {instance_id!r} in task hub {taskhub!r}. "
            "Check the id and that client and worker use the same task hub (TASKHUB)."
        )


class InstanceExistsError(DurableAgentsError):
    def __init__(self, instance_id: str, status: str) -> None:
        self.instance_id = instance_id
        super().__init__(
            f"instance id {instance_id!r} is already in use (status {status}). "
            "Pick another id, omit it to get a fresh one, or pass reuse_id=True to replace a "
            "finished instance."
        )


class InvalidInstanceStateError(DurableAgentsError):
    """The operation does not apply to an instance in its current status."""


class WaitTimeoutError(DurableAgentsError, TimeoutError):
    """A client-side wait for an instance ran out of time; the instance itself is unaffected."""


class TaskFailedError(DurableAgentsError):
    """An activity or sub-orchestration failed; `details` holds the original error."""

    def __init__(self, message: str, details: FailureDetails) -> None:
        super().__init__(message)
        self.details = details


class TaskCancelledError(DurableAgentsError):
    """The orchestration cancelled the task (`task.cancel()`); yielding it raises this."""


class EventTimeoutError(DurableAgentsError, TimeoutError):
    """No external event of the awaited name arrived before the wait's timeout."""


class NonDeterminismError(DurableAgentsError):
    """Replaying the orchestration produced a different action than its recorded history."""


class OrchestrationYieldError(DurableAgentsError, TypeError):
    """An orchestration yielded a value that is not a task."""


class AgentError(DurableAgentsError):
    """An agent turn went wrong."""


class AgentNotRegisteredError(NotRegisteredError, AgentError):
    kind = "agent"

    def __init__(self, name: str, registered: list[str] | None = None) -> None:
        known = ", ".join(sorted(registered)) if registered else "none"
        LookupError.__init__(
            self,
            f"no agent named {name!r} is registered (registered: {known}). Check the spelling, or add "
            "it with app.add_agent(agent) or DurableApp(agents=[...]) in the worker's app.",
        )
        self.name = name


class ModelCallError(AgentError):
    """The model endpoint refused the call or kept failing after retries."""


class ToolLoopError(AgentError):
    """A turn asked for tools more rounds than the agent's max_tool_rounds."""


class StructuredOutputError(AgentError):
    """The model's reply did not match the requested response_format, even after a corrective retry."""


class SessionNotFoundError(AgentError, LookupError):
    def __init__(self, agent: str, session_key: str, taskhub: str) -> None:
        super().__init__(
            f"no session {session_key!r} of agent {agent!r} in task hub {taskhub!r}; "
            "sessions are created by their first run"
        )


class StreamNotFoundError(AgentError, LookupError):
    def __init__(self, key: str) -> None:
        super().__init__(
            f"no response stream {key!r}: the correlation id is unknown in this task hub, its turn has not "
            "started streaming yet, or the stream expired (DURABLE_AGENTS_STREAM_TTL_SECONDS)"
        )


class AgentRunError(AgentError):
    """An agent turn failed; `details` holds the original error."""

    def __init__(self, message: str, details: FailureDetails) -> None:
        super().__init__(message)
        self.details = details
