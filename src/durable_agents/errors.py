"""Every error durable-agents raises, in one tree.

    DurableAgentsError
    ├── ConfigurationError            bad settings, or a database whose schema does not match
    │   └── SchemaMismatchError       run `durable-agents db upgrade` (or upgrade the package)
    ├── SerializationError            a value that is not JSON (also a TypeError)
    │   └── PayloadTooLargeError      a payload over the configured size limit
    ├── NotRegisteredError            a name no app registered (also a LookupError)
    │   ├── OrchestrationNotRegisteredError
    │   ├── ActivityNotRegisteredError
    │   ├── EntityNotRegisteredError
    │   └── EntityOperationNotFoundError  the entity has no operation of that name
    ├── InstanceNotFoundError         no such instance in this task hub (also a LookupError)
    ├── InstanceExistsError           an explicit instance id that is already in use
    ├── InvalidInstanceStateError     the operation does not fit the instance's status
    ├── ScheduleNotFoundError         no such schedule in this task hub (also a LookupError)
    ├── ScheduleExistsError           a schedule id that is already in use
    ├── InvalidScheduleError          a bad cron, time zone, interval or overlap policy (also a ValueError)
    ├── WaitTimeoutError              a client wait ran out (also a TimeoutError)
    ├── TaskFailedError               an activity or sub-orchestration failed (inside an orchestration)
    ├── TaskCancelledError            a task the orchestration cancelled was yielded (inside an orchestration)
    ├── ActivityTimeoutError          an activity ran past its start-to-close or heartbeat timeout (also a TimeoutError)
    ├── EventTimeoutError             wait_for_external_event(timeout=) ran out (also a TimeoutError)
    ├── NonDeterminismError           orchestration code no longer matches its recorded history
    ├── VersionMismatchError          a worker's version does not match the instance's (versioning fail)
    ├── OrchestrationYieldError       an orchestration yielded something that is not a task
    ├── EntityLockError               lock_entities misused (nested, or a call outside the locked set)
    └── AgentError                    an agent turn went wrong
        ├── AgentNotRegisteredError   no agent of that name (also a NotRegisteredError)
        ├── ModelCallError            the model endpoint refused or failed, after retries
        │   └── IncompleteReplyError  replies kept ending cut off or empty, after retries
        ├── ToolLoopError             a turn asked for tools more rounds than allowed
        ├── StructuredOutputError     the reply never matched the requested response_format
        ├── SessionNotFoundError      no such session in this task hub (also a LookupError)
        ├── StreamNotFoundError       no response stream of that id in this task hub (also a LookupError)
        ├── ApprovalNotFoundError     no tool approval request of that id in this task hub (also a LookupError)
        ├── ApprovalDecidedError      the tool approval request was approved or rejected already
        └── AgentRunError             a turn failed; `details` says why (raised to the client)

Every message says what happened and what to do about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FailedTask:
    """One link of a failure chain: a task whose failure failed the code that awaited it."""

    #: "activity" or "sub-orchestration".
    kind: str
    name: str
    #: The task's number in the orchestration that scheduled it.
    task_id: int
    #: Where the task ran: the orchestration that scheduled an activity, or the sub-orchestration itself.
    instance_id: str
    attempts: int = 1

    def describe(self) -> str:
        where = [f"task #{self.task_id}"]
        if self.kind == "sub-orchestration":
            where.append(f"instance {self.instance_id!r}")
        if self.attempts > 1:
            where.append(f"after {self.attempts} attempts")
        return f"{self.kind} {self.name!r} ({', '.join(where)})"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "task_id": self.task_id,
            "instance_id": self.instance_id,
            "attempts": self.attempts,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FailedTask:
        return cls(
            str(data["kind"]), str(data["name"]), int(data["task_id"]), str(data["instance_id"]), int(data["attempts"])
        )


@dataclass(frozen=True)
class FailureDetails:
    """Why a task or an orchestration failed: the original error's type, message and traceback, and the
    chain of tasks it failed through, outermost first (empty when the code itself raised it)."""

    error_type: str
    message: str
    stack_trace: str | None = None
    chain: tuple[FailedTask, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "error_type": self.error_type,
            "message": self.message,
            "stack_trace": self.stack_trace,
            "chain": [link.to_json() for link in self.chain],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FailureDetails:
        chain = tuple(FailedTask.from_json(link) for link in data.get("chain") or ())
        return cls(str(data["error_type"]), str(data["message"]), data.get("stack_trace"), chain)

    def through(self, link: FailedTask) -> FailureDetails:
        """These details as seen one task further out: `link` failed because of them."""
        return FailureDetails(self.error_type, self.message, self.stack_trace, (link, *self.chain))

    @classmethod
    def from_exception(cls, error: BaseException) -> FailureDetails:
        import traceback

        if isinstance(error, TaskFailedError):
            # Keep the innermost cause: the orchestration failed *because* an activity failed.
            return error.details
        stack = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        return cls(type(error).__name__, str(error), stack)

    def __str__(self) -> str:
        """The chain and the innermost error: "sub-orchestration 'x' (task #1, instance 'i') failed: activity
        'y' (task #2) failed: RuntimeError: boom"."""
        return ": ".join([*(f"{link.describe()} failed" for link in self.chain), f"{self.error_type}: {self.message}"])


class DurableAgentsError(Exception):
    """Base class of every error raised by durable-agents.

    Its `args` are the arguments it was made with, and `str()` is its message: an error that crosses a
    Celery result (JSON: `type(error)(*args)` on the other side) or a pickle comes back as it was, rather
    than with its message taken for its first argument.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> DurableAgentsError:
        error = super().__new__(cls, *args)
        error._made_with = (args, kwargs)  # type: ignore[attr-defined]
        return error

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._message = str(args[0]) if len(args) == 1 else super().__str__()
        made_args, made_kwargs = getattr(self, "_made_with", (args, {}))
        if made_args != args and not made_kwargs:
            self.args = made_args

    def __str__(self) -> str:
        return getattr(self, "_message", None) or super().__str__()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


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


class EntityNotRegisteredError(NotRegisteredError):
    kind = "entity"


class EntityOperationNotFoundError(NotRegisteredError):
    """An operation the entity does not define."""

    def __init__(self, entity: str, operation: str, operations: list[str]) -> None:
        LookupError.__init__(
            self,
            f"entity {entity!r} has no operation {operation!r} (its operations: {', '.join(operations) or 'none'}). "
            "Check the spelling, or add a method of that name to the entity's class.",
        )
        self.name = operation


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


class ScheduleNotFoundError(DurableAgentsError, LookupError):
    def __init__(self, schedule_id: str, taskhub: str) -> None:
        self.schedule_id = schedule_id
        super().__init__(
            f"no schedule {schedule_id!r} in task hub {taskhub!r}. Check the id (`durable-agents schedules list` "
            "shows them) and that the client uses the same task hub (TASKHUB)."
        )


class ScheduleExistsError(DurableAgentsError):
    def __init__(self, schedule_id: str) -> None:
        self.schedule_id = schedule_id
        super().__init__(
            f"schedule id {schedule_id!r} is already in use. Pick another id, change the schedule with "
            "update_schedule, or delete it first."
        )


class InvalidScheduleError(DurableAgentsError, ValueError):
    """A schedule that cannot fire as given: a bad cron expression, time zone, interval or policy."""


class WaitTimeoutError(DurableAgentsError, TimeoutError):
    """A client-side wait for an instance ran out of time; the instance itself is unaffected."""


class TaskFailedError(DurableAgentsError):
    """An activity or sub-orchestration failed; `details` holds the original error."""

    def __init__(self, message: str, details: FailureDetails) -> None:
        super().__init__(message)
        self.details = details


class TaskCancelledError(DurableAgentsError):
    """The orchestration cancelled the task (`task.cancel()`); yielding it raises this."""


class ActivityTimeoutError(DurableAgentsError, TimeoutError):
    """An activity ran past its `start_to_close_timeout`, or sent no heartbeat for its `heartbeat_timeout`.

    Raised in the activity's place: the orchestration sees it as the task's failure (retried by the
    call's retry policy like any other), and the worker takes the slot back.
    """


class EventTimeoutError(DurableAgentsError, TimeoutError):
    """No external event of the awaited name arrived before the wait's timeout."""


class NonDeterminismError(DurableAgentsError):
    """Replaying the orchestration produced a different action than its recorded history."""


class VersionMismatchError(DurableAgentsError):
    """A worker under `VersioningOptions(on_mismatch="fail")` met an instance of a version it does not run."""


class OrchestrationYieldError(DurableAgentsError, TypeError):
    """An orchestration yielded a value that is not a task."""


class EntityLockError(DurableAgentsError):
    """`context.lock_entities` misused: a lock taken inside another, or a call to an entity the critical
    section did not lock (either could deadlock)."""


class AgentError(DurableAgentsError):
    """An agent turn went wrong."""


class AgentNotRegisteredError(NotRegisteredError, AgentError):
    kind = "agent"

    def __init__(self, name: str, registered: list[str] | None = None) -> None:
        known = ", ".join(sorted(registered)) if registered else "none"
        DurableAgentsError.__init__(
            self,
            f"no agent named {name!r} is registered (registered: {known}). Check the spelling, or add "
            "it with app.add_agent(agent) or DurableApp(agents=[...]) in the worker's app.",
        )
        self.name = name


class ModelCallError(AgentError):
    """The model endpoint refused the call or kept failing after retries."""


class IncompleteReplyError(ModelCallError):
    """The model kept ending its reply incomplete: no finish_reason, finish_reason "length", or empty."""


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


class ApprovalNotFoundError(AgentError, LookupError):
    def __init__(self, approval_id: str, taskhub: str) -> None:
        super().__init__(
            f"no tool approval request {approval_id!r} in task hub {taskhub!r}; list the pending ones with "
            "`durable-agents approvals list` (or client.list_pending_approvals())"
        )


class ApprovalDecidedError(AgentError):
    """The tool approval request was decided already (by a person or by its timeout), or its turn ended."""


class AgentRunError(AgentError):
    """An agent turn failed; `details` holds the original error."""

    def __init__(self, message: str, details: FailureDetails) -> None:
        super().__init__(message)
        self.details = details
