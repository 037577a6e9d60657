"""History events: the append-only record an orchestration is replayed from.

Each event is a small pydantic model with a `type` tag, stored as one JSON object. Payload
fields (`input`, `result`, `data`) hold already-encoded JSON values.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, TypeAdapter, model_serializer

from ..errors import FailedTask, FailureDetails

Json = Any
TimerPurpose = Literal["timer", "retry", "event_timeout", "start"]
CancelledKind = Literal["timer", "event", "activity", "sub_orchestration"]


class _Event(BaseModel):
    # Unknown fields are ignored, not refused: a later release may add one (as `started_at` was added to
    # activity outcomes), and a worker of this release must still replay that history during a deploy.
    model_config = ConfigDict(frozen=True, extra="ignore")


class FailedTaskInfo(_Event):
    """A link of a failure chain (`FailedTask`), as history stores it."""

    kind: str
    name: str
    task_id: int
    instance_id: str
    attempts: int = 1


class FailureInfo(_Event):
    error_type: str
    message: str
    stack_trace: str | None = None
    #: The tasks the error failed through, outermost first (see `FailureDetails.chain`).
    chain: tuple[FailedTaskInfo, ...] = ()

    @classmethod
    def of(cls, details: FailureDetails) -> FailureInfo:
        chain = tuple(FailedTaskInfo(**link.to_json()) for link in details.chain)
        return cls(error_type=details.error_type, message=details.message, stack_trace=details.stack_trace, chain=chain)

    def details(self) -> FailureDetails:
        chain = tuple(FailedTask(**link.model_dump()) for link in self.chain)
        return FailureDetails(self.error_type, self.message, self.stack_trace, chain)


class StepStarted(_Event):
    """Opens every step; its timestamp is the orchestration's `current_utc_datetime`."""

    type: Literal["StepStarted"] = "StepStarted"
    timestamp: datetime


class ExecutionStarted(_Event):
    type: Literal["ExecutionStarted"] = "ExecutionStarted"
    name: str
    input: Json = None
    execution_id: str
    parent_instance_id: str | None = None
    #: The instance's orchestration version (`context.version`); None: unversioned.
    version: str | None = None


class TaskScheduled(_Event):
    type: Literal["TaskScheduled"] = "TaskScheduled"
    task_id: int
    name: str
    input: Json = None
    tags: dict[str, str] | None = None


class _Ran(_Event):
    """An activity's outcome, with when the activity ran (by the clock of the worker that ran it): what a
    timeline draws, where the steps around it show only when it was scheduled and when it was heard of.
    Replay never reads them; an outcome without them (in-step, or from an earlier release) has None."""

    started_at: datetime | None = None
    finished_at: datetime | None = None

    @model_serializer(mode="wrap")
    def _without_unknown_times(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in ("started_at", "finished_at"):
            if data.get(name) is None:
                data.pop(name, None)
        return data


class TaskCompleted(_Ran):
    type: Literal["TaskCompleted"] = "TaskCompleted"
    task_id: int
    result: Json = None


class TaskFailed(_Ran):
    type: Literal["TaskFailed"] = "TaskFailed"
    task_id: int
    failure: FailureInfo


class TimerCreated(_Event):
    type: Literal["TimerCreated"] = "TimerCreated"
    task_id: int
    fire_at: datetime
    purpose: TimerPurpose = "timer"


class TimerFired(_Event):
    type: Literal["TimerFired"] = "TimerFired"
    task_id: int
    fire_at: datetime


class SubOrchestrationCreated(_Event):
    type: Literal["SubOrchestrationCreated"] = "SubOrchestrationCreated"
    task_id: int
    name: str
    instance_id: str
    input: Json = None
    #: The child instance's tags.
    tags: dict[str, str] | None = None
    #: The child's version when the code gave one; None: the parent's.
    version: str | None = None


class SubOrchestrationCompleted(_Event):
    type: Literal["SubOrchestrationCompleted"] = "SubOrchestrationCompleted"
    task_id: int
    result: Json = None


class SubOrchestrationFailed(_Event):
    type: Literal["SubOrchestrationFailed"] = "SubOrchestrationFailed"
    task_id: int
    failure: FailureInfo


class EventSent(_Event):
    """The code sent an event to another instance, starting it first if `start_name` is set."""

    type: Literal["EventSent"] = "EventSent"
    task_id: int
    instance_id: str
    name: str
    data: Json = None
    start_name: str | None = None
    start_input: Json = None


class TaskCancelled(_Event):
    """The code cancelled one of its tasks (`task.cancel()`), as an action numbered like any other.

    What the task left pending goes with it: the timer or work item numbered `target_task_id` (for a
    wait on an event, its timeout timer), or the sub-orchestration `instance_id`, which is terminated.
    A late outcome of the task is never delivered to the code nor recorded."""

    type: Literal["TaskCancelled"] = "TaskCancelled"
    task_id: int
    kind: CancelledKind
    #: The activity's, sub-orchestration's or event's name; empty for a timer.
    name: str = ""
    target_task_id: int | None = None
    instance_id: str | None = None


class EntityCalled(_Event):
    """The code called an operation of an entity (`context.call_entity`) and waits for its result, which
    arrives as this task's TaskCompleted or TaskFailed. `lock_id`: sent from inside that critical section."""

    type: Literal["EntityCalled"] = "EntityCalled"
    task_id: int
    entity: str
    operation: str
    input: Json = None
    lock_id: str | None = None


class EntitySignaled(_Event):
    """The code signalled an entity (`context.signal_entity`): fire and forget, delivered once."""

    type: Literal["EntitySignaled"] = "EntitySignaled"
    task_id: int
    entity: str
    operation: str
    input: Json = None
    lock_id: str | None = None


class EntityLockRequested(_Event):
    """The code asked to lock `entities` (sorted: the order every lock is taken in); granted as this
    task's TaskCompleted once the last of them is locked."""

    type: Literal["EntityLockRequested"] = "EntityLockRequested"
    task_id: int
    entities: tuple[str, ...]
    lock_id: str


class EntityUnlockSent(_Event):
    """The code left its critical section (or ended inside it): every entity it locked is released."""

    type: Literal["EntityUnlockSent"] = "EntityUnlockSent"
    task_id: int
    entities: tuple[str, ...]
    lock_id: str


# -- messages in an entity's inbox (never in an orchestration's history) ----------------------------


class EntityOperation(_Event):
    """An operation for an entity to apply; with `task_id`, a call whose caller waits for the result."""

    type: Literal["EntityOperation"] = "EntityOperation"
    operation: str
    input: Json = None
    caller_instance_id: str | None = None
    caller_execution_id: str | None = None
    task_id: int | None = None
    lock_id: str | None = None


class EntityLockRequest(_Event):
    """A critical section asking `entities[position]` for its lock; passed along the sorted list."""

    type: Literal["EntityLockRequest"] = "EntityLockRequest"
    lock_id: str
    holder_instance_id: str
    holder_execution_id: str
    task_id: int
    entities: tuple[str, ...]
    position: int = 0


class EntityUnlock(_Event):
    type: Literal["EntityUnlock"] = "EntityUnlock"
    lock_id: str


class PatchMarker(_Event):
    """`context.is_patched(change_id)` took the new branch (or `deprecate_patch` ran) in this execution.

    Not an action replay checks: a replay of history with the marker takes the patched branch, one
    without it the old branch, and code that no longer asks (after the clean-up deploy) skips it."""

    type: Literal["PatchMarker"] = "PatchMarker"
    change_id: str
    deprecated: bool = False


class ExecutionRewound(_Event):
    """The failed instance was rewound: its failed tasks run again, what succeeded is kept."""

    type: Literal["ExecutionRewound"] = "ExecutionRewound"
    reason: str | None = None
    #: The tasks that run again, by number.
    task_ids: tuple[int, ...] = ()


class EventRaised(_Event):
    type: Literal["EventRaised"] = "EventRaised"
    name: str
    data: Json = None


class ExecutionSuspended(_Event):
    type: Literal["ExecutionSuspended"] = "ExecutionSuspended"
    reason: str | None = None


class ExecutionResumed(_Event):
    type: Literal["ExecutionResumed"] = "ExecutionResumed"
    reason: str | None = None


class ExecutionTerminated(_Event):
    type: Literal["ExecutionTerminated"] = "ExecutionTerminated"
    output: Json = None


class ExecutionCompleted(_Event):
    """Closes an execution: completed, failed or continued as new."""

    type: Literal["ExecutionCompleted"] = "ExecutionCompleted"
    status: Literal["COMPLETED", "FAILED", "CONTINUED_AS_NEW"]
    result: Json = None
    failure: FailureInfo | None = None


HistoryEvent = Annotated[
    StepStarted
    | ExecutionStarted
    | TaskScheduled
    | TaskCompleted
    | TaskFailed
    | TimerCreated
    | TimerFired
    | SubOrchestrationCreated
    | SubOrchestrationCompleted
    | SubOrchestrationFailed
    | EventSent
    | TaskCancelled
    | EntityCalled
    | EntitySignaled
    | EntityLockRequested
    | EntityUnlockSent
    | EntityOperation
    | EntityLockRequest
    | EntityUnlock
    | EventRaised
    | PatchMarker
    | ExecutionRewound
    | ExecutionSuspended
    | ExecutionResumed
    | ExecutionTerminated
    | ExecutionCompleted,
    Field(discriminator="type"),
]

_adapter: TypeAdapter[HistoryEvent] = TypeAdapter(HistoryEvent)

#: Events that record an action the orchestration code took; replay checks them against the code.
ScheduledEvent = (
    TaskScheduled
    | TimerCreated
    | SubOrchestrationCreated
    | EventSent
    | TaskCancelled
    | EntityCalled
    | EntitySignaled
    | EntityLockRequested
    | EntityUnlockSent
)
#: What an orchestration step sends to entities.
EntitySend = EntityCalled | EntitySignaled | EntityLockRequested | EntityUnlockSent
#: What an entity's inbox holds.
EntityMessage = EntityOperation | EntityLockRequest | EntityUnlock
#: Events that end a task: once the task is cancelled, they are stale.
OutcomeEvent = TaskCompleted | TaskFailed | TimerFired | SubOrchestrationCompleted | SubOrchestrationFailed


def event_from_json(data: dict[str, Any]) -> HistoryEvent:
    return _adapter.validate_python(data)


def event_to_json(event: HistoryEvent) -> dict[str, Any]:
    return event.model_dump(mode="json")
