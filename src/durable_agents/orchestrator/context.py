"""The orchestration context: the API orchestration code uses to schedule durable work.

Everything here is deterministic: time, ids and task numbers come from the replayed history,
never from the clock or a random source.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..serialization import decode, encode
from .history import (
    EventSent,
    Json,
    ScheduledEvent,
    SubOrchestrationCreated,
    TaskScheduled,
    TimerCreated,
    TimerPurpose,
)
from .retry import RetryPolicy
from .tasks import (
    ActivityTask,
    CompletableTask,
    ExternalEventTask,
    SubOrchestrationTask,
    Task,
    TimerTask,
    WhenAllTask,
    WhenAnyTask,
)

if TYPE_CHECKING:
    from ..agents.proxy import OrchestrationAgent

_UUID_NAMESPACE = uuid.UUID("9e8f1c52-3a7d-4b8e-9f0a-6c2d1e4b7a93")


def durable_name(target: str | Callable[..., Any]) -> str:
    """The registered name of an activity or orchestration given by name or by function."""
    if isinstance(target, str):
        return target
    name = getattr(target, "__durable_name__", None) or getattr(target, "__name__", None)
    if not isinstance(name, str):
        raise TypeError(f"expected a registered function or its name, got {target!r}")
    return name


class OrchestrationContext:
    """Passed to every orchestration function; see the README for the full tour."""

    def __init__(
        self,
        instance_id: str,
        *,
        max_payload_bytes: int,
        result_type_of: Callable[[str, str], Any] | None = None,
    ) -> None:
        self._instance_id = instance_id
        self._max_payload_bytes = max_payload_bytes
        self._result_type_of = result_type_of
        self._name = ""
        self._execution_id = ""
        self._input: Json = None
        self._now = datetime.min
        self._is_replaying = False
        self._sequence = 0
        self._uuid_counter = 0
        # Actions the code took that history has not yet confirmed (during replay) or that this
        # step must persist (when live).
        self._new_actions: dict[int, ScheduledEvent] = {}
        self._open_tasks: dict[int, CompletableTask[Any]] = {}
        self._retry_timers: dict[int, ActivityTask[Any] | SubOrchestrationTask[Any]] = {}
        self._event_timeouts: dict[int, ExternalEventTask[Any]] = {}
        self._event_waiters: dict[str, list[ExternalEventTask[Any]]] = {}
        #: Events no wait has taken yet, per name, with their arrival number (to carry them over in order).
        self._buffered_events: dict[str, list[tuple[int, str, Json]]] = {}
        self._arrivals = 0
        self._custom_status: Json = None
        self._custom_status_changed = False
        self._continue_as_new: tuple[Json, bool] | None = None

    # -- what the code may read -------------------------------------------------------------

    @property
    def instance_id(self) -> str:
        return self._instance_id

    @property
    def name(self) -> str:
        """The orchestration's registered name."""
        return self._name

    @property
    def current_utc_datetime(self) -> datetime:
        """The time this step started, identical on every replay. Use it instead of the clock."""
        return self._now

    @property
    def is_replaying(self) -> bool:
        """True while old history is being replayed: skip side effects such as logging then."""
        return self._is_replaying

    def get_input(self, model: Any = None) -> Any:
        """The orchestration's input; with `model`, validated into that type."""
        if model is None:
            return self._input
        return decode(self._input, model, what=f"input of orchestration {self._name!r}")

    def new_uuid(self) -> str:
        """A UUID that is the same on every replay of this orchestration."""
        self._uuid_counter += 1
        seed = f"{self._instance_id}/{self._execution_id}/{self._uuid_counter}"
        return str(uuid.uuid5(_UUID_NAMESPACE, seed))

    def set_custom_status(self, status: Any) -> None:
        """Publish a small JSON value that clients see in the instance's state."""
        self._custom_status = encode(status, what="custom status", limit=self._max_payload_bytes)
        self._custom_status_changed = True

    # -- what the code may schedule ---------------------------------------------------------

    def call_activity(
        self,
        activity: str | Callable[..., Any],
        *,
        input: Any = None,
        retry_policy: RetryPolicy | None = None,
    ) -> ActivityTask[Any]:
        name = durable_name(activity)
        encoded = encode(input, what=f"input of activity {name!r}", limit=self._max_payload_bytes)
        task: ActivityTask[Any] = ActivityTask(self._next_id(), name, encoded, retry_policy)
        self._schedule_activity(task)
        return task

    def call_sub_orchestrator(
        self,
        orchestrator: str | Callable[..., Any],
        *,
        input: Any = None,
        instance_id: str | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> SubOrchestrationTask[Any]:
        name = durable_name(orchestrator)
        encoded = encode(input, what=f"input of sub-orchestration {name!r}", limit=self._max_payload_bytes)
        task_id = self._next_id()
        child_id = instance_id or f"{self._instance_id}:{self._execution_id[:8]}:{task_id}"
        task: SubOrchestrationTask[Any] = SubOrchestrationTask(task_id, name, child_id, encoded, retry_policy)
        self._schedule_sub_orchestration(task)
        return task

    def create_timer(self, fire_at: datetime | timedelta) -> TimerTask:
        """A task that completes at `fire_at` (an aware datetime) or after a `timedelta`."""
        return self._create_timer(self._fire_time(fire_at), "timer")

    def wait_for_external_event(self, name: str, *, timeout: timedelta | None = None) -> ExternalEventTask[Any]:
        """A task that completes with the data of the next event `name` raised to this instance.

        Events raised before the wait are buffered and delivered in order. With `timeout`, the task
        fails with `EventTimeoutError` if no event arrives in time; a timer racing it for the same
        moment in `task_any` wins.
        """
        task: ExternalEventTask[Any] = ExternalEventTask(name)
        key = name.casefold()
        buffered = self._buffered_events.get(key)
        if buffered:
            task._complete(buffered.pop(0)[2])
            return task
        self._event_waiters.setdefault(key, []).append(task)
        if timeout is not None:
            timer = self._create_timer(self._now + timeout, "event_timeout")
            self._event_timeouts[timer.task_id] = task
        return task

    def send_event(self, instance_id: str, name: str, data: Any = None) -> None:
        """Raise event `name` on another instance (fire and forget; delivered once, after this step)."""
        self._send_event(instance_id, name, data)

    def _send_event(
        self, instance_id: str, name: str, data: Any, *, start_name: str | None = None, start_input: Any = None
    ) -> None:
        encoded = encode(data, what=f"data of event {name!r}", limit=self._max_payload_bytes)
        task_id = self._next_id()
        self._new_actions[task_id] = EventSent(
            task_id=task_id,
            instance_id=instance_id,
            name=name,
            data=encoded,
            start_name=start_name,
            start_input=start_input,
        )

    def get_agent(self, name: str) -> OrchestrationAgent:
        """The agent `name` as a proxy whose `run(...)` is a durable task."""
        from ..agents.proxy import OrchestrationAgent

        return OrchestrationAgent(self, name)

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
        encoded = encode(new_input, what="continue_as_new input", limit=self._max_payload_bytes)
        self._continue_as_new = (encoded, save_events)

    # -- engine internals -------------------------------------------------------------------

    def _next_id(self) -> int:
        self._sequence += 1
        return self._sequence

    def _fire_time(self, fire_at: datetime | timedelta) -> datetime:
        if isinstance(fire_at, timedelta):
            return self._now + fire_at
        if fire_at.tzinfo is None:
            raise ValueError("create_timer needs an aware datetime; use context.current_utc_datetime + timedelta(...)")
        return fire_at

    def _create_timer(self, fire_at: datetime, purpose: TimerPurpose) -> TimerTask:
        task = TimerTask(self._next_id(), fire_at)
        self._open_tasks[task.task_id] = task
        self._new_actions[task.task_id] = TimerCreated(task_id=task.task_id, fire_at=fire_at, purpose=purpose)
        return task

    def _schedule_activity(self, task: ActivityTask[Any]) -> None:
        if task.retry is not None and task.retry.first_attempt_at is None:
            task.retry.first_attempt_at = self._now
        self._open_tasks[task.task_id] = task
        self._new_actions[task.task_id] = TaskScheduled(task_id=task.task_id, name=task.name, input=task.input)

    def _schedule_sub_orchestration(self, task: SubOrchestrationTask[Any]) -> None:
        if task.retry is not None and task.retry.first_attempt_at is None:
            task.retry.first_attempt_at = self._now
        self._open_tasks[task.task_id] = task
        self._new_actions[task.task_id] = SubOrchestrationCreated(
            task_id=task.task_id, name=task.name, instance_id=task.instance_id, input=task.input
        )

    def _decode_result(self, kind: str, name: str, value: Json) -> Any:
        if self._result_type_of is None:
            return value
        annotation = self._result_type_of(kind, name)
        if annotation is None:
            return value
        return decode(value, annotation, what=f"result of {kind} {name!r}")
