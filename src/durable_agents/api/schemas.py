"""Request and response bodies of the HTTP API (they make its OpenAPI schema)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from ..moments import RANGE, bounded, clamped
from ..state import OrchestrationStatus
from ..tags import checked_tags

#: Text without control characters (Postgres refuses NUL; ids must survive being printed and put in URLs).
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"


def storable(value: Any) -> Any:
    """Refuse what the database cannot store as JSON: NUL characters, NaN and infinities."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError("JSON numbers must be finite: NaN and Infinity are not JSON")
        if isinstance(item, str):
            if "\x00" in item:
                raise ValueError("JSON text must not contain the NUL character (\\u0000); Postgres cannot store it")
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return value


#: Any JSON value the database can store.
JsonValue = Annotated[Any, AfterValidator(storable)]
Tags = Annotated[dict[str, str] | None, AfterValidator(checked_tags)]

InstanceId = Annotated[str, Path(min_length=1, max_length=256, pattern=PRINTABLE, description="The instance id.")]
OrchestrationName = Annotated[
    str, Path(min_length=1, max_length=256, pattern=PRINTABLE, description="A registered orchestration name.")
]
EventName = Annotated[str, Path(min_length=1, max_length=256, pattern=PRINTABLE, description="The event name.")]
AgentName = Annotated[str, Path(min_length=1, max_length=128, pattern=PRINTABLE, description="The agent's name.")]
#: A session key may hold '/' (the routes take the rest of the path, raw or as %2F), as the run's body allows.
SessionKey = Annotated[
    str, Path(min_length=1, max_length=120, pattern=PRINTABLE, description="The session key ('default' if none).")
]
CorrelationId = Annotated[
    str,
    Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$", description="The run's correlation id."),
]
Limit = Annotated[int, Query(ge=1, le=1000, description="At most this many items.")]
Offset = Annotated[int, Query(ge=0, le=2_000_000_000, description="Skip this many items.")]


def _as_utc(moment: datetime) -> datetime:
    """A naive datetime from a query string is taken as UTC."""
    return moment if moment.utcoffset() is not None else moment.replace(tzinfo=UTC)


def _in_range(moment: datetime) -> datetime:
    return bounded(_as_utc(moment), "time")


def _clamped(moment: datetime) -> datetime:
    value = clamped(_as_utc(moment), "time")
    assert value is not None
    return value


#: A filter's bound: UTC if it names no offset, moved into the range every store holds.
Moment = Annotated[datetime, AfterValidator(_clamped)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- errors -----------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str = Field(description="A stable, machine-readable error code.")
    message: str = Field(description="What happened and what to do about it.")
    details: list[dict[str, Any]] | None = Field(default=None, description="Per-field problems of invalid input.")


class ErrorBody(BaseModel):
    error: ErrorDetail


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of a route that can answer these error codes."""
    return {code: {"model": ErrorBody, "description": HTTP_REASONS.get(code, "Error")} for code in codes}


HTTP_REASONS = {
    401: "No valid API key",
    403: "A key of another task hub",
    404: "Not found",
    409: "Conflicts with the instance's state",
    413: "Payload too large",
    422: "Invalid input",
    502: "The agent's run failed",
    503: "A service behind the API is unavailable",
    504: "Timed out",
}


# -- instances --------------------------------------------------------------------------------


class StartRequest(Strict):
    input: JsonValue = Field(default=None, description="The orchestration's input (any JSON).")
    instance_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        pattern=r"^[^\x00-\x1f\x7f/]+$",
        description="Your own instance id (default: a new one). No '/' so it can be addressed in URLs.",
    )
    start_at: Annotated[AwareDatetime, AfterValidator(_in_range)] | None = Field(
        default=None, description=f"Start later, at this time ({RANGE})."
    )
    reuse_id: bool = Field(default=False, description="Replace a finished instance of the same id.")
    tags: Tags = Field(default=None, description='Labels to find the instance by, like {"team": "billing"}.')
    version: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^\S(.*\S)?$",
        description="The orchestration version (default: the API app's version); workers' versioning matches it.",
    )


class RestartRequest(Strict):
    new_instance_id: bool = Field(default=False, description="Start under a new id, keeping the finished instance.")


class StartAccepted(BaseModel):
    instance_id: str
    name: str
    status_url: str = Field(description="GET it for the instance's status and output.")


class FailedTask(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str = Field(description='"activity" or "sub-orchestration".')
    name: str
    task_id: int = Field(description="The task's number in the orchestration that scheduled it.")
    instance_id: str = Field(description="Where it ran: the scheduling orchestration, or the sub-orchestration.")
    attempts: int


class Failure(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    error_type: str = Field(description="The innermost error's type: what the failing code raised.")
    message: str
    stack_trace: str | None = None
    chain: list[FailedTask] = Field(
        default_factory=list, description="The tasks the error failed through, outermost first."
    )


class Instance(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    instance_id: str
    name: str
    taskhub: str
    runtime_status: OrchestrationStatus
    created_at: datetime
    last_updated_at: datetime
    completed_at: datetime | None
    input: Any
    output: Any
    custom_status: Any
    failure_details: Failure | None
    parent_instance_id: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    version: str | None = None


class InstancePage(BaseModel):
    items: list[Instance]
    limit: int
    offset: int
    next_offset: int | None = Field(description="The offset of the next page; null on the last page.")


class History(BaseModel):
    instance_id: str
    events: list[dict[str, Any]] = Field(description="Every event of the current execution, oldest first.")


class TerminateRequest(Strict):
    output: JsonValue = Field(default=None, description="The output the terminated instance reports.")


class ReasonRequest(Strict):
    reason: str | None = Field(default=None, max_length=1000, pattern=r"^[^\x00]*$")


class Accepted(BaseModel):
    instance_id: str
    accepted: Literal[True] = True
    status_url: str


class Purged(BaseModel):
    instance_id: str
    purged: int = Field(description="How many instances were deleted (with sub-orchestrations).")


class Names(BaseModel):
    names: list[str] | None = Field(description="The registered names; null when the API was started without an app.")


# -- entities ---------------------------------------------------------------------------------


class SignalRequest(Strict):
    operation: str = Field(min_length=1, max_length=256, pattern=PRINTABLE, description="The operation to apply.")
    input: JsonValue = Field(default=None, description="The operation's input (any JSON).")


class SignalAccepted(BaseModel):
    entity_id: str
    operation: str
    accepted: Literal[True] = True
    status_url: str = Field(description="GET it for the entity's state and its last operations.")


class EntityOperation(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str = Field(description='"call", "signal", "lock" or "unlock".')
    operation: str
    caller: str | None = Field(description="The orchestration that sent it; null for a client's signal.")
    input: Any
    result: Any
    failure: dict[str, Any] | None
    applied_at: datetime


class Entity(BaseModel):
    entity_id: str = Field(description='"name@key".')
    name: str
    key: str
    state: Any = Field(description="Its state; null until an operation stored one.")
    locked_by: str | None = Field(description="The orchestration holding it in a critical section, if any.")
    waiting: int = Field(description="Operations of other callers waiting for its lock.")
    operation_count: int
    created_at: datetime
    updated_at: datetime
    recent_operations: list[EntityOperation] = Field(description="Its last operations, newest first (listing: none).")


class EntityPage(BaseModel):
    items: list[Entity]
    limit: int
    offset: int
    next_offset: int | None = Field(description="The offset of the next page; null on the last page.")


# -- agents -----------------------------------------------------------------------------------


class ChatMessage(Strict):
    role: Literal["user", "system", "assistant"]
    content: str = Field(max_length=10_000_000, pattern=r"^[^\x00]*$")


def _has_text(value: str | list[ChatMessage]) -> str | list[ChatMessage]:
    texts = [value] if isinstance(value, str) else [m.content for m in value]
    if not any(text.strip() for text in texts):
        raise ValueError("an agent run needs a non-empty message")
    return value


class RunRequest(Strict):
    message: Annotated[
        str | list[ChatMessage],
        Field(description="The user's message, or a list of chat messages."),
        AfterValidator(_has_text),
    ]
    session: str | None = Field(
        default=None,
        min_length=1,
        max_length=120,
        pattern=PRINTABLE,
        description="The session key (default: 'default').",
    )
    wait: bool = Field(default=True, description="Wait for the response; false answers 202 with the correlation id.")
    timeout: float = Field(
        default=60.0, gt=0, le=300, description="Seconds to wait; past it the answer is 202 with the correlation id."
    )


class Usage(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class RunResponse(BaseModel):
    agent: str
    session: str
    correlation_id: str
    text: str
    messages: list[dict[str, Any]]
    usage: Usage


class RunAccepted(BaseModel):
    agent: str
    session: str
    correlation_id: str
    status: Literal["RUNNING", "PENDING"] = "PENDING"
    response_url: str = Field(description="GET it for the response once the run completes.")
    stream_url: str = Field(description="Follow the response as Server-Sent Events.")


class Session(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    agent: str
    session_key: str
    message_count: int
    turn_count: int
    prompt_tokens: int
    completion_tokens: int
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    messages: list[dict[str, Any]]


class SessionPage(BaseModel):
    items: list[Session]
    limit: int
    offset: int
    next_offset: int | None


# -- health -----------------------------------------------------------------------------------


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, str] = Field(
        description="Each dependency: 'ok', or what is wrong ('failing' to a caller without an API key)."
    )
    detail: str | None = Field(default=None, description="How to see what is wrong, when it is not shown.")


# -- diagnosis --------------------------------------------------------------------------------


class PendingItem(BaseModel):
    kind: Literal["step", "activity", "agent", "entity", "event", "timer", "sub_orchestration", "start"]
    name: str = Field(description="The orchestration, activity, agent or event name; a timer's purpose.")
    since: datetime | None = Field(description="Since when the instance waits for it.")
    task_id: int | None
    fires_at: datetime | None = Field(description="When a timer fires, or an event wait times out.")
    instance_id: str | None = Field(description="The sub-orchestration's or the agent session's instance.")
    status: str | None = Field(description="A work item's or sub-orchestration's status.")
    served_by: list[str] = Field(description="Node names of the live workers that run it.")


class ExplanationBody(BaseModel):
    instance_id: str
    name: str
    status: OrchestrationStatus
    reason: Literal[
        "finished",
        "suspended",
        "scheduled",
        "no_worker",
        "queued",
        "running",
        "waiting_for_sub_orchestration",
        "waiting_for_agent",
        "waiting_for_entity",
        "waiting_for_event",
        "waiting_for_timer",
        "waiting",
    ] = Field(description="Why the instance is where it is; `no_worker` needs someone to act.")
    message: str = Field(description="The reason in one sentence, with what to do.")
    needs_attention: bool = Field(description="True when nothing happens until someone acts (no live worker).")
    pending: list[PendingItem] = Field(description="What the instance waits for.")
    notes: list[str] = Field(description="Further problems worth knowing.")
    child: ExplanationBody | None = Field(description="The sub-orchestration it waits for, explained.")


class Worker(BaseModel):
    worker_id: str
    taskhub: str
    node_name: str
    host: str
    pid: int
    version: str
    queues: list[str] = Field(description="The Celery queues it consumes.")
    orchestrations: list[str]
    activities: list[str]
    agents: list[str]
    runs_sweeper: bool
    concurrency: int = Field(description="Its worker slots: how many tasks it runs at once.")
    started_at: datetime
    last_heartbeat_at: datetime
    expires_at: datetime = Field(description="Without a heartbeat before then, the worker counts as gone.")
    live: bool


class WorkerList(BaseModel):
    items: list[Worker]
