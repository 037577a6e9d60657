"""One execution's replay state: shared by the context (what the code does) and the executor (what history says)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .. import ids
from ..errors import TaskCancelledError
from ..serialization import decode
from .history import (
    CancelledKind,
    EventRaised,
    HistoryEvent,
    Json,
    OutcomeEvent,
    PatchMarker,
    ScheduledEvent,
    SubOrchestrationCreated,
    TaskCancelled,
    TaskScheduled,
    TimerCreated,
    TimerPurpose,
)
from .tasks import ActivityTask, CompletableTask, ExternalEventTask, SubOrchestrationTask, Task, TimerTask

RetriedTask = ActivityTask[Any] | SubOrchestrationTask[Any]


@dataclass(eq=False)
class ReplayState:
    """Everything the engine knows about one execution; time, ids and task numbers all come from history."""

    instance_id: str
    max_payload_bytes: int
    result_type_of: Callable[[str, str], Any] | None = None
    name: str = ""
    execution_id: str = ""
    input: Json = None
    version: str | None = None
    now: datetime = datetime.min
    is_replaying: bool = False
    sequence: int = 0
    uuid_counter: int = 0
    # Actions the code took that history has not yet confirmed (during replay) or that this step must
    # persist (when live).
    new_actions: dict[int, ScheduledEvent] = field(default_factory=dict)
    open_tasks: dict[int, CompletableTask[Any]] = field(default_factory=dict)
    retry_timers: dict[int, RetriedTask] = field(default_factory=dict)
    event_timeouts: dict[int, ExternalEventTask[Any]] = field(default_factory=dict)
    event_waiters: dict[str, list[ExternalEventTask[Any]]] = field(default_factory=dict)
    #: Events no wait has taken yet, per name, with their arrival number (to carry them over in order).
    buffered_events: dict[str, list[tuple[int, str, Json]]] = field(default_factory=dict)
    arrivals: int = 0
    custom_status: Json = None
    custom_status_changed: bool = False
    continue_as_new: tuple[Json, bool] | None = None
    #: Task numbers whose outcome the code no longer wants: tasks it cancelled (or their timers).
    cancelled: set[int] = field(default_factory=set)
    #: The critical section the code holds (an `entities.EntityLock`), and whether one is being requested.
    held_lock: Any = None
    lock_requested: bool = False
    #: The change ids whose markers the replayed history holds (read before the replay starts).
    recorded_patches: frozenset[str] = frozenset()
    #: What `is_patched` answered for each change id in this execution: the first answer holds throughout.
    patches: dict[str, bool] = field(default_factory=dict)
    #: Markers this step records, written before its actions.
    new_markers: list[PatchMarker] = field(default_factory=list)
    #: Activities and sub-orchestrations whose failure reached the code (no retry left): what a rewind reruns.
    failed_tasks: dict[int, RetriedTask] = field(default_factory=dict)

    # -- numbering --------------------------------------------------------------------------

    def next_id(self) -> int:
        self.sequence += 1
        return self.sequence

    def new_uuid(self) -> str:
        self.uuid_counter += 1
        return ids.replayable_uuid(self.instance_id, self.execution_id, self.uuid_counter)

    # -- actions the code takes -------------------------------------------------------------

    def record(self, action: ScheduledEvent) -> None:
        self.new_actions[action.task_id] = action

    def take_new_actions(self) -> list[ScheduledEvent | PatchMarker]:
        """The markers, then the actions not yet confirmed by history, in task order; handed over once."""
        actions: list[ScheduledEvent | PatchMarker] = [*self.new_markers]
        actions += [self.new_actions[task_id] for task_id in sorted(self.new_actions)]
        self.new_actions.clear()
        self.new_markers.clear()
        return actions

    # -- patches ----------------------------------------------------------------------------

    def is_patched(self, change_id: str) -> bool:
        """True for code running live (the marker is recorded) and for a replay whose history has the
        marker; False for a replay of history from before the change. The first answer holds for the
        rest of the execution, so a replay answers as the original run did."""
        answer = self.patches.get(change_id)
        if answer is None:
            answer = change_id in self.recorded_patches if self.is_replaying else True
            self.patches[change_id] = answer
            if answer and not self.is_replaying:
                self.new_markers.append(PatchMarker(change_id=change_id))
        return answer

    def deprecate_patch(self, change_id: str) -> None:
        """The patch's old branch is gone: nothing to decide, but the marker is kept in new history."""
        if change_id not in self.patches:
            self.patches[change_id] = True
            if not self.is_replaying:
                self.new_markers.append(PatchMarker(change_id=change_id, deprecated=True))

    def create_timer(self, fire_at: datetime, purpose: TimerPurpose) -> TimerTask:
        task = TimerTask(self.next_id(), fire_at)
        task._canceller = self.cancel
        self.open_tasks[task.task_id] = task
        self.record(TimerCreated(task_id=task.task_id, fire_at=fire_at, purpose=purpose))
        return task

    def schedule_activity(self, task: ActivityTask[Any]) -> None:
        self._start_attempt(task)
        self.record(TaskScheduled(task_id=task.task_id, name=task.name, input=task.input, tags=task.tags))

    def schedule_sub_orchestration(self, task: SubOrchestrationTask[Any]) -> None:
        self._start_attempt(task)
        self.record(
            SubOrchestrationCreated(
                task_id=task.task_id,
                name=task.name,
                instance_id=task.instance_id,
                input=task.input,
                tags=task.tags,
                version=task.version,
            )
        )

    def _start_attempt(self, task: RetriedTask) -> None:
        if task.retry is not None and task.retry.first_attempt_at is None:
            task.retry.first_attempt_at = self.now
        task._canceller = self.cancel
        self.open_tasks[task.task_id] = task

    # -- retries ----------------------------------------------------------------------------

    def schedule_retry(self, task: RetriedTask, fire_at: datetime) -> None:
        """A durable timer after which `task` is scheduled again; the code does not wait on it itself."""
        timer = self.create_timer(fire_at, "retry")
        self.open_tasks.pop(timer.task_id)
        self.retry_timers[timer.task_id] = task

    def reschedule(self, task: RetriedTask) -> None:
        """The next attempt of `task`, under a new task number (a sub-orchestration also under a new id)."""
        assert task.retry is not None
        task.retry.attempt += 1
        task.task_id = self.next_id()
        if isinstance(task, ActivityTask):
            self.schedule_activity(task)
        else:
            task.instance_id = ids.retried_child_instance_id(task.instance_id, task.retry.attempt)
            self.schedule_sub_orchestration(task)

    # -- external events --------------------------------------------------------------------

    def wait_for_event(self, name: str, timeout: timedelta | None) -> ExternalEventTask[Any]:
        """A wait for event `name`: taken from the buffer if one already arrived, else queued."""
        task: ExternalEventTask[Any] = ExternalEventTask(name)
        task._canceller = self.cancel
        key = name.casefold()
        buffered = self.buffered_events.get(key)
        if buffered:
            task._complete(buffered.pop(0)[2])
            return task
        self.event_waiters.setdefault(key, []).append(task)
        if timeout is not None:
            timer = self.create_timer(self.now + timeout, "event_timeout")
            self.event_timeouts[timer.task_id] = task
        return task

    def deliver_event(self, event: EventRaised) -> bool:
        """Complete the oldest wait for `event`, or buffer it; True if a wait took it."""
        key = event.name.casefold()
        waiters = self.event_waiters.get(key)
        if waiters:
            waiters.pop(0)._complete(event.data)
            return True
        self.arrivals += 1
        self.buffered_events.setdefault(key, []).append((self.arrivals, event.name, event.data))
        return False

    def drop_wait(self, waiter: ExternalEventTask[Any]) -> None:
        for waiters in self.event_waiters.values():
            if waiter in waiters:
                waiters.remove(waiter)

    def unconsumed_events(self) -> list[EventRaised]:
        """Buffered events in arrival order, whatever their name: what continue_as_new carries over."""
        waiting = sorted(event for events in self.buffered_events.values() for event in events)
        return [EventRaised(name=name, data=data) for _, name, data in waiting]

    # -- cancellation -----------------------------------------------------------------------

    def cancel(self, task: Task[Any]) -> None:
        """The code cancelled `task` (not complete yet): forget what it waits for, record the action, and
        fail it with TaskCancelledError, so that code that yields it learns why."""
        if isinstance(task, ExternalEventTask):
            self.drop_wait(task)
            timeout = next((timer for timer, waiter in self.event_timeouts.items() if waiter is task), None)
            if timeout is not None:
                del self.event_timeouts[timeout]
                self.open_tasks.pop(timeout, None)
            action = TaskCancelled(task_id=self.next_id(), kind="event", name=task.name, target_task_id=timeout)
            what = f"the wait for event {task.name!r}"
        elif isinstance(task, TimerTask):
            self.open_tasks.pop(task.task_id, None)
            action = TaskCancelled(task_id=self.next_id(), kind="timer", target_task_id=task.task_id)
            what = f"timer #{task.task_id}"
        else:
            assert isinstance(task, ActivityTask | SubOrchestrationTask)
            action = self._cancel_retried(task)
            what = f"{action.kind.replace('_', '-')} {task.name!r} (task #{task.task_id})"
        if action.target_task_id is not None:
            self.cancelled.add(action.target_task_id)
        self.record(action)
        task._fail(TaskCancelledError(f"{what} was cancelled by the orchestration"))

    def _cancel_retried(self, task: RetriedTask) -> TaskCancelled:
        kind: CancelledKind = "activity" if isinstance(task, ActivityTask) else "sub_orchestration"
        retry_timer = next((timer for timer, retried in self.retry_timers.items() if retried is task), None)
        if retry_timer is not None:  # between attempts: only the retry's timer is pending
            del self.retry_timers[retry_timer]
            return TaskCancelled(task_id=self.next_id(), kind=kind, name=task.name, target_task_id=retry_timer)
        self.open_tasks.pop(task.task_id, None)
        child = task.instance_id if isinstance(task, SubOrchestrationTask) else None
        return TaskCancelled(
            task_id=self.next_id(), kind=kind, name=task.name, target_task_id=task.task_id, instance_id=child
        )

    def is_stale(self, event: HistoryEvent) -> bool:
        """Whether `event` is the late outcome of a task the code cancelled."""
        return isinstance(event, OutcomeEvent) and event.task_id in self.cancelled

    # -- results ----------------------------------------------------------------------------

    def decode_result(self, kind: str, name: str, value: Json) -> Any:
        """`value` validated into the declared result type of activity/orchestration `name`, if it has one."""
        if self.result_type_of is None:
            return value
        annotation = self.result_type_of(kind, name)
        if annotation is None:
            return value
        return decode(value, annotation, what=f"result of {kind} {name!r}")
