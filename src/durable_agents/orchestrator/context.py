"""The orchestration context: the API orchestration code uses to schedule durable work.

Everything here is deterministic: time, ids and task numbers come from the replayed history,
never from the clock or a random source.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .. import ids
from ..errors import ConfigurationError
from ..ids import EntityId
from ..serialization import decode, encode
from ..tags import checked_tags
from . import entities
from .entities import EntityCallTask, EntityLockTask
from .history import EventSent
from .replay_state import ReplayState
from .retry import RetryPolicy
from .tasks import (
    ActivityTask,
    ExternalEventTask,
    SubOrchestrationTask,
    Task,
    TimerTask,
    WhenAllTask,
    WhenAnyTask,
)
from .versions import checked_version

if TYPE_CHECKING:
    from ..agents.proxy import OrchestrationAgent

#: Builds the proxy `context.get_agent(name)` returns; the layer that hosts agents provides it.
AgentFactory = Callable[["OrchestrationContext", str], "OrchestrationAgent"]


def durable_name(target: str | Callable[..., Any]) -> str:
    """The registered name of an activity or orchestration given by name or by function."""
    if isinstance(target, str):
        return target
    name = getattr(target, "__durable_name__", None) or getattr(target, "__name__", None)
    if not isinstance(name, str):
        raise TypeError(f"expected a registered function or its name, got {target!r}")
    return name


@dataclass(frozen=True)
class StartIfMissing:
    """For `send_event(..., start=...)`: start orchestration `name` with `input` under the target id first,
    unless an instance with that id is already running."""

    name: str
    input: Any = None


class OrchestrationContext:
    """Passed to every orchestration function; see the README for the full tour."""

    def __init__(self, state: ReplayState, *, agent_factory: AgentFactory | None = None) -> None:
        # The executor owns `state` and feeds history into it; the context only reads and schedules.
        self._state = state
        self._agent_factory = agent_factory

    # -- what the code may read -------------------------------------------------------------

    @property
    def instance_id(self) -> str:
        return self._state.instance_id

    @property
    def name(self) -> str:
        """The orchestration's registered name."""
        return self._state.name

    @property
    def version(self) -> str | None:
        """The instance's orchestration version, given when it was started (None: unversioned)."""
        return self._state.version

    def is_patched(self, change_id: str) -> bool:
        """Whether to take the new branch of change `change_id`: True for new executions (a marker is
        recorded in the history), True for replays whose history has the marker, False for replays of
        history from before the change. Keep both branches until no instance from before it is left."""
        return self._state.is_patched(change_id)

    def deprecate_patch(self, change_id: str) -> None:
        """For the clean-up deploy: the old branch of `change_id` is gone, only the new one is left."""
        self._state.deprecate_patch(change_id)

    @property
    def current_utc_datetime(self) -> datetime:
        """The time this step started, identical on every replay. Use it instead of the clock."""
        return self._state.now

    @property
    def is_replaying(self) -> bool:
        """True while old history is being replayed: skip side effects such as logging then."""
        return self._state.is_replaying

    def get_input(self, model: Any = None) -> Any:
        """The orchestration's input; with `model`, validated into that type."""
        if model is None:
            return self._state.input
        return decode(self._state.input, model, what=f"input of orchestration {self._state.name!r}")

    def new_uuid(self) -> str:
        """A UUID that is the same on every replay of this orchestration."""
        return self._state.new_uuid()

    def set_custom_status(self, status: Any) -> None:
        """Publish a small JSON value that clients see in the instance's state."""
        state = self._state
        state.custom_status = encode(status, what="custom status", limit=state.max_payload_bytes)
        state.custom_status_changed = True

    # -- what the code may schedule ---------------------------------------------------------

    def call_activity(
        self,
        activity: str | Callable[..., Any],
        *,
        input: Any = None,
        retry_policy: RetryPolicy | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> ActivityTask[Any]:
        """A task for one call of `activity`; `tags` label the call in the history."""
        state = self._state
        name = durable_name(activity)
        encoded = encode(input, what=f"input of activity {name!r}", limit=state.max_payload_bytes)
        task: ActivityTask[Any] = ActivityTask(state.next_id(), name, encoded, retry_policy)
        task.tags = checked_tags(tags, f"tags of activity {name!r}")
        state.schedule_activity(task)
        return task

    def call_sub_orchestrator(
        self,
        orchestrator: str | Callable[..., Any],
        *,
        input: Any = None,
        instance_id: str | None = None,
        retry_policy: RetryPolicy | None = None,
        tags: Mapping[str, str] | None = None,
        version: str | None = None,
    ) -> SubOrchestrationTask[Any]:
        """A task for a child instance of `orchestrator`; `tags` go on the child instance. The child is
        of this instance's version unless given its own `version`."""
        state = self._state
        name = durable_name(orchestrator)
        encoded = encode(input, what=f"input of sub-orchestration {name!r}", limit=state.max_payload_bytes)
        task_id = state.next_id()
        child_id = instance_id or ids.child_instance_id(state.instance_id, state.execution_id, task_id)
        task: SubOrchestrationTask[Any] = SubOrchestrationTask(task_id, name, child_id, encoded, retry_policy)
        task.tags = checked_tags(tags, f"tags of sub-orchestration {name!r}")
        task.version = checked_version(version)
        state.schedule_sub_orchestration(task)
        return task

    def create_timer(self, fire_at: datetime | timedelta) -> TimerTask:
        """A task that completes at `fire_at` (an aware datetime) or after a `timedelta`."""
        return self._state.create_timer(self._fire_time(fire_at), "timer")

    def wait_for_external_event(self, name: str, *, timeout: timedelta | None = None) -> ExternalEventTask[Any]:
        """A task that completes with the data of the next event `name` raised to this instance.

        Events raised before the wait are buffered and delivered in order. With `timeout`, the task
        fails with `EventTimeoutError` if no event arrives in time; a timer racing it for the same
        moment in `task_any` wins.
        """
        return self._state.wait_for_event(name, timeout)

    def send_event(self, instance_id: str, name: str, data: Any = None, *, start: StartIfMissing | None = None) -> None:
        """Raise event `name` on another instance (fire and forget; delivered once, after this step).

        With `start`, an instance that is not running under `instance_id` is started first, as
        `start.name` with `start.input`, and then receives the event.
        """
        state = self._state
        encoded = encode(data, what=f"data of event {name!r}", limit=state.max_payload_bytes)
        start_input = None
        if start is not None:
            what = f"input of {start.name!r} started by event {name!r}"
            start_input = encode(start.input, what=what, limit=state.max_payload_bytes)
        state.record(
            EventSent(
                task_id=state.next_id(),
                instance_id=instance_id,
                name=name,
                data=encoded,
                start_name=start.name if start is not None else None,
                start_input=start_input,
            )
        )

    def call_entity(self, entity: EntityId | str, operation: str, input: Any = None) -> EntityCallTask[Any]:
        """A task for one operation of `entity` ("name@key" or EntityId), completing with its result."""
        return entities.call_entity(self._state, entity, operation, input)

    def signal_entity(self, entity: EntityId | str, operation: str, input: Any = None) -> None:
        """Send `entity` an operation without waiting for it (delivered once, after this step)."""
        entities.signal_entity(self._state, entity, operation, input)

    def lock_entities(self, *entity_ids: EntityId | str) -> EntityLockTask:
        """A task that completes once every entity is locked for this orchestration, with the critical
        section: `with (yield context.lock_entities(a, b)):` ... Other callers' operations wait meanwhile."""
        return entities.lock_entities(self._state, entity_ids)

    def get_agent(self, name: str) -> OrchestrationAgent:
        """The agent `name` as a proxy whose `run(...)` is a durable task."""
        if self._agent_factory is None:
            raise ConfigurationError(
                f"context.get_agent({name!r}) needs the DurableApp that hosts agents: run this orchestration on "
                f"an app with agents registered, or use app.get_agent(context, {name!r})"
            )
        return self._agent_factory(self, name)

    def task_all(self, tasks: Sequence[Task[Any]]) -> WhenAllTask:
        """A task that completes with the list of all results, or fails with the first failure."""
        return WhenAllTask(tasks)

    def task_any(self, tasks: Sequence[Task[Any]]) -> WhenAnyTask:
        """A task that completes with whichever of `tasks` finishes first (the task object itself)."""
        return WhenAnyTask(tasks)

    def continue_as_new(self, new_input: Any = None, *, save_events: bool = True) -> None:
        """End this execution and start afresh with `new_input` and an empty history.

        Events raised but not yet awaited are carried over unless `save_events` is False.
        """
        encoded = encode(new_input, what="continue_as_new input", limit=self._state.max_payload_bytes)
        self._state.continue_as_new = (encoded, save_events)

    def _fire_time(self, fire_at: datetime | timedelta) -> datetime:
        if isinstance(fire_at, timedelta):
            return self._state.now + fire_at
        if fire_at.tzinfo is None:
            raise ValueError("create_timer needs an aware datetime; use context.current_utc_datetime + timedelta(...)")
        return fire_at
