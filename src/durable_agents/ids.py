"""Every id and idempotency key the engine makes, in one place: what a key promises is said once.

Pure: the replay engine imports it, so it loads nothing else. Keys that name a recorded completion
are stored in unique indexes; changing how one is spelled would let a completion be recorded twice
across a deploy, so they never change.
"""

from __future__ import annotations

import uuid
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


def agent_turn_instance_id(correlation_id: str) -> str:
    """One agent turn, a sub-orchestration of its session's entity."""
    return f"{AGENT_TURN_PREFIX}{correlation_id}"


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
