"""Every id and idempotency key the engine makes, in one place: what a key promises is said once.

Pure: the replay engine imports it, so it loads nothing else. Keys that name a recorded completion
are stored in unique indexes; changing how one is spelled would let a completion be recorded twice
across a deploy, so they never change.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime


def new_execution_id() -> str:
    """A fresh execution of an instance: every start, restart and continue_as_new gets one."""
    return uuid.uuid4().hex


def new_instance_id() -> str:
    """An instance id for a caller who gave none."""
    return uuid.uuid4().hex


def new_session_key() -> str:
    """A new agent conversation, started by a client (inside an orchestration: `context.new_uuid()`)."""
    return uuid.uuid4().hex


def new_correlation_id() -> str:
    """One agent turn requested by a client: it names the turn's instance and its reply."""
    return uuid.uuid4().hex


def new_worker_id() -> str:
    """A worker process's registration in the store."""
    return uuid.uuid4().hex


# -- inbox dedupe keys: an event under one of these is posted at most once -------------------------


def start_key(execution_id: str) -> str:
    """The start of one execution."""
    return f"start:{execution_id}"


def task_key(execution_id: str, task_id: int) -> str:
    """The completion of task `task_id` (an activity's outcome): one completion per task, ever."""
    return f"task:{execution_id}:{task_id}"


def timer_key(execution_id: str, task_id: int) -> str:
    """A timer's firing."""
    return f"timer:{execution_id}:{task_id}"


def sent_event_key(sender_instance_id: str, sender_execution_id: str, task_id: int) -> str:
    """An event one orchestration sent another (`context.send_event`), delivered once however often
    the sending step runs."""
    return f"sent:{sender_instance_id}:{sender_execution_id}:{task_id}"


def sub_orchestration_key(parent_execution_id: str, parent_task_id: int | None) -> str:
    """A sub-orchestration's outcome in its parent's inbox."""
    return f"sub:{parent_execution_id}:{parent_task_id}"


# -- ids the user's code sees ----------------------------------------------------------------------


def activity_idempotency_key(taskhub: str, instance_id: str, execution_id: str, task_id: int) -> str:
    """An activity call's key, the same on every attempt of it (`ActivityContext.idempotency_key`)."""
    return f"{taskhub}/{instance_id}/{execution_id}/{task_id}"


def tool_call_idempotency_key(taskhub: str, correlation_id: str, tool_call_id: str) -> str:
    """An agent's tool call (an MCP tool's, sent in the request's `_meta`): one key per call the model
    made in a turn, the same on every attempt and replay of it."""
    return f"{taskhub}/turn/{correlation_id}/{tool_call_id}"


#: Changing it would change every id `context.new_uuid()` hands out, and with them what stored histories mean.
_REPLAYABLE_NAMESPACE = uuid.UUID("9e8f1c52-3a7d-4b8e-9f0a-6c2d1e4b7a93")


def replayable_uuid(instance_id: str, execution_id: str, counter: int) -> str:
    """The `counter`-th UUID an execution's code asks for (`context.new_uuid()`): the same on every replay."""
    return str(uuid.uuid5(_REPLAYABLE_NAMESPACE, f"{instance_id}/{execution_id}/{counter}"))


def child_instance_id(parent_instance_id: str, parent_execution_id: str, task_id: int) -> str:
    """A sub-orchestration's id when the code gave none: the same on every replay of its parent."""
    return f"{parent_instance_id}:{parent_execution_id[:8]}:{task_id}"


def retried_child_instance_id(instance_id: str, attempt: int) -> str:
    """The id of a retried sub-orchestration's attempt `attempt` (a new instance per attempt)."""
    return f"{instance_id.split('#')[0]}#{attempt}"


#: How the ids of the engine's own instances for agents begin: session entities, and their turns (whose
#: own sub-orchestrations, agent tools, derive their ids from the turn's). Lists leave them all out by default.
AGENT_ID_PREFIX = "@"
AGENT_SESSION_PREFIX = f"{AGENT_ID_PREFIX}agent:"
AGENT_TURN_PREFIX = f"{AGENT_ID_PREFIX}turn:"


def agent_session_instance_id(agent: str, session_key: str) -> str:
    """The entity that serialises the turns of one conversation."""
    return f"{AGENT_SESSION_PREFIX}{agent}:{session_key}"


def tool_approval_id(correlation_id: str, tool_call_id: str) -> str:
    """The approval request of one tool call of one turn: the same on every replay of the turn."""
    return uuid.uuid5(_REPLAYABLE_NAMESPACE, f"approval/{correlation_id}/{tool_call_id}").hex


def agent_turn_instance_id(correlation_id: str) -> str:
    """One agent turn, a sub-orchestration of its session's entity."""
    return f"{AGENT_TURN_PREFIX}{correlation_id}"


# -- entities ----------------------------------------------------------------------------------------

#: How an entity's instance id begins: hidden from instance lists with the rest of the engine's own.
ENTITY_PREFIX = f"{AGENT_ID_PREFIX}entity:"
#: The longest entity id ("name@key") an instance id has room for.
MAX_ENTITY_ID = 256 - len(ENTITY_PREFIX)


@dataclass(frozen=True, order=True)
class EntityId:
    """One entity: the registered entity `name` and the `key` of this instance of it, written "name@key"."""

    name: str
    key: str

    def __post_init__(self) -> None:
        if not self.name or "@" in self.name or ":" in self.name:
            raise ValueError(f"an entity name is non-empty and has no '@' or ':', got {self.name!r}")
        if not self.key:
            raise ValueError(f"entity {self.name!r} needs a non-empty key, as in {self.name}@some-key")
        if len(str(self)) > MAX_ENTITY_ID:
            raise ValueError(f"entity id {str(self)[:40]!r}... is over {MAX_ENTITY_ID} characters; use a shorter key")

    def __str__(self) -> str:
        return f"{self.name}@{self.key}"

    @classmethod
    def of(cls, entity: EntityId | str) -> EntityId:
        """`entity` as an EntityId: one already, or its "name@key" text."""
        if isinstance(entity, EntityId):
            return entity
        if not isinstance(entity, str) or "@" not in entity:
            raise ValueError(f"an entity id is EntityId(name, key) or a 'name@key' string, got {entity!r}")
        name, _, key = entity.partition("@")
        return cls(name, key)

    @property
    def instance_id(self) -> str:
        """The instance whose inbox holds the entity's operations."""
        return f"{ENTITY_PREFIX}{self}"

    @classmethod
    def from_instance_id(cls, instance_id: str) -> EntityId:
        return cls.of(instance_id.removeprefix(ENTITY_PREFIX))


def is_entity_instance(instance_id: str) -> bool:
    return instance_id.startswith(ENTITY_PREFIX)


def entity_lock_id(instance_id: str, execution_id: str, task_id: int) -> str:
    """One critical section (`context.lock_entities`): the same on every replay of the orchestration."""
    return f"{instance_id}:{execution_id}:{task_id}"


def entity_message_key(sender_instance_id: str, sender_execution_id: str, task_id: int, entity: EntityId) -> str:
    """An operation, lock request or release an orchestration sent an entity: posted once."""
    return f"entity:{_digest(sender_instance_id, sender_execution_id, str(task_id), str(entity))}"


def entity_lock_forward_key(lock_id: str, position: int) -> str:
    """A lock request an entity passed on to the next entity of the critical section: posted once."""
    return f"lock:{_digest(lock_id, str(position))}"


def _digest(*parts: str) -> str:
    """Parts of any length, in a dedupe key's 128 characters."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


# -- recurring schedules ---------------------------------------------------------------------------


#: The tag every run of a schedule carries, valued with the schedule's id: `query_instances(tags=...)` finds them.
SCHEDULE_TAG = "schedule"


def schedule_run_id(schedule_id: str, fire_at: datetime) -> str:
    """The run of a schedule for one fire time: the same for every worker that fires it, so a fire time
    starts at most one instance however many workers race for it."""
    return f"{schedule_id}@{_utc_stamp(fire_at)}"


def triggered_run_id(schedule_id: str, at: datetime) -> str:
    """A run asked for by `trigger_schedule` at `at`: never the id of a fire time's run."""
    return f"{schedule_id}@manual-{_utc_stamp(at)}"


def _utc_stamp(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{utc.microsecond:06d}Z" if utc.microsecond else f"{text}Z"
