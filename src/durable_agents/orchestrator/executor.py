"""The replay executor: feeds history into an orchestration generator and collects its new actions.

Pure Python: no database, no broker, no clock. One executor lives as long as its orchestration
execution, so a worker may keep it between steps and feed it only the new events (replay caching);
a fresh executor replays the whole history first and checks every recorded action against what
the code does now.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from ..errors import (
    EventTimeoutError,
    FailedTask,
    FailureDetails,
    NonDeterminismError,
    OrchestrationYieldError,
    TaskFailedError,
)
from ..serialization import encode
from .context import AgentFactory, OrchestrationContext
from .entities import EntityCallTask, EntityLockTask, grant, release_on_exit
from .history import (
    EntityCalled,
    EntityLockRequested,
    EntitySignaled,
    EntityUnlockSent,
    EventRaised,
    EventSent,
    ExecutionCompleted,
    ExecutionRewound,
    ExecutionStarted,
    FailureInfo,
    HistoryEvent,
    Json,
    PatchMarker,
    ScheduledEvent,
    StepStarted,
    SubOrchestrationCompleted,
    SubOrchestrationCreated,
    SubOrchestrationFailed,
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    TimerFired,
)
from .replay_state import ReplayState
from .tasks import ActivityTask, SubOrchestrationTask, Task, WhenAllTask, not_a_task

Orchestrator = Callable[[OrchestrationContext], Any]
Outcome = Literal["running", "completed", "failed", "continued_as_new"]


@dataclass(frozen=True)
class Divergence:
    """Where replaying history and the code parted: the task number, what history recorded, what the code
    did instead, and the line the code was at (when known)."""

    task_id: int
    expected: str
    actual: str
    location: str | None = None

    def describe(self) -> str:
        where = f" (the code was at {self.location})" if self.location else ""
        return f"task #{self.task_id}: history recorded {self.expected}, the code now does {self.actual}{where}"


@dataclass
class StepResult:
    """What one step decided: history to append, and whether the execution ended."""

    new_events: list[HistoryEvent] = field(default_factory=list)
    outcome: Outcome = "running"
    result: Json = None
    failure: FailureDetails | None = None
    continue_input: Json = None
    carryover_events: list[EventRaised] = field(default_factory=list)
    custom_status: Json = None
    custom_status_changed: bool = False
    #: True when the code waits on a task_all over several tasks (a chord can wake it once).
    waiting_on_all: bool = False


def describe_action(event: ScheduledEvent | None) -> str:
    if event is None:
        return "nothing (the code has finished or is waiting on something else)"
    if isinstance(event, TaskScheduled):
        return f"call_activity({event.name!r})"
    if isinstance(event, SubOrchestrationCreated):
        return f"call_sub_orchestrator({event.name!r})"
    if isinstance(event, EventSent):
        return f"send_event({event.instance_id!r}, {event.name!r})"
    if isinstance(event, EntityCalled | EntitySignaled):
        verb = "call_entity" if isinstance(event, EntityCalled) else "signal_entity"
        return f"{verb}({event.entity!r}, {event.operation!r})"
    if isinstance(event, EntityLockRequested):
        return f"lock_entities({', '.join(map(repr, event.entities))})"
    if isinstance(event, EntityUnlockSent):
        return f"the release of the lock on {', '.join(map(repr, event.entities))}"
    if isinstance(event, TaskCancelled):
        target = f" {event.name!r}" if event.name else f" #{event.target_task_id}"
        return f"cancel() of the {event.kind.replace('_', '-')}{target}"
    return "create_timer(...)"


def _link(task: ActivityTask[Any] | SubOrchestrationTask[Any], instance_id: str) -> FailedTask:
    """The failure chain's link for `task`, which the instance `instance_id` scheduled."""
    attempts = task.retry.attempt if task.retry is not None else 1
    if isinstance(task, ActivityTask):
        return FailedTask("activity", task.name, task.task_id, instance_id, attempts)
    return FailedTask("sub-orchestration", task.name, task.task_id, task.instance_id, attempts)


def _rewound_failures(history: list[HistoryEvent]) -> set[int]:
    """The positions of the failures a later rewind took back: the code never hears of them on replay, and
    waits for the task's next outcome instead."""
    skipped: set[int] = set()
    for position, event in enumerate(history):
        if not isinstance(event, ExecutionRewound):
            continue
        wanted = set(event.task_ids)
        for earlier in range(position - 1, -1, -1):
            failure = history[earlier]
            if isinstance(failure, (TaskFailed, SubOrchestrationFailed)) and failure.task_id in wanted:
                skipped.add(earlier)
                wanted.discard(failure.task_id)
    return skipped


class ReplayExecutor:
    def __init__(
        self,
        orchestrator: Orchestrator,
        instance_id: str,
        *,
        max_payload_bytes: int,
        result_type_of: Callable[[str, str], Any] | None = None,
        agent_factory: AgentFactory | None = None,
    ) -> None:
        self._orchestrator = orchestrator
        #: What the engine knows of the execution; the context the code sees works on the same object.
        self.state = ReplayState(instance_id, max_payload_bytes=max_payload_bytes, result_type_of=result_type_of)
        self.context = OrchestrationContext(self.state, agent_factory=agent_factory)
        self._generator: Generator[Any, Any, Any] | None = None
        self._awaiting: Task[Any] | None = None
        self._result = StepResult()
        self._replay_failure: FailureDetails | None = None
        self._ending = StepResult()
        #: The first place replay and history parted, if they did.
        self.divergence: Divergence | None = None
        self.history_length = 0

    @property
    def is_finished(self) -> bool:
        return self._result.outcome != "running"

    def is_stale(self, event: HistoryEvent) -> bool:
        """Whether `event` is the late outcome of a task the code cancelled: not for the code, nor for history."""
        return self.state.is_stale(event)

    @property
    def replay_failure(self) -> FailureDetails | None:
        """Why the stored history no longer replays (the code diverged from it), if it does not."""
        return self._replay_failure

    def replay(self, events: Iterable[HistoryEvent]) -> None:
        """Re-run the code against history already stored.

        A mismatch between the history and what the code now does is kept, and the next `execute`
        fails the execution with that NonDeterminismError.
        """
        history = list(events)
        self.state.recorded_patches = frozenset(e.change_id for e in history if isinstance(e, PatchMarker))
        rewound = _rewound_failures(history)
        self.state.is_replaying = True
        try:
            for position, event in enumerate(history):
                if position not in rewound:
                    self._apply(event)
                self.history_length += 1
        except NonDeterminismError as error:
            self._replay_failure = FailureDetails.from_exception(error)
        finally:
            self.state.is_replaying = False
        # What replay scheduled is already persisted; only genuinely new actions count from here.
        self._ending = self._result
        self._result = StepResult(outcome=self._result.outcome)
        self.state.new_markers.clear()

    def continue_replayed(self) -> StepResult:
        """What the code did past the end of the replayed history, as a step's result: the actions history
        does not hold, and how the execution ended if it did. A rewind goes on from its history this way."""
        result = self._ending
        result.new_events = [*self.state.take_new_actions(), *result.new_events]
        result.custom_status = self.state.custom_status
        result.custom_status_changed = self.state.custom_status_changed
        self.history_length += len(result.new_events)
        return result

    def refuse(self, failure: FailureDetails) -> None:
        """Fail the execution at its next `execute` with `failure`, without running the code (a worker that
        must not run this instance's version)."""
        self._replay_failure = failure

    def execute(self, events: Iterable[HistoryEvent]) -> StepResult:
        """Apply this step's new events and return what to persist."""
        state = self.state
        state.is_replaying = False
        state.custom_status_changed = False
        self._result = StepResult(outcome=self._result.outcome)
        consumed = 0
        if self._replay_failure is not None:
            state.new_actions.clear()
            self._finish_failed(self._replay_failure)
            consumed = len(list(events))
        else:
            for event in events:
                self._apply(event)
                consumed += 1
        result = self._result
        result.new_events = [*state.take_new_actions(), *result.new_events]
        result.custom_status = state.custom_status
        result.custom_status_changed = state.custom_status_changed
        result.waiting_on_all = (
            isinstance(self._awaiting, WhenAllTask)
            and not self._awaiting.is_complete
            and len(self._awaiting.children) > 1
        )
        self.history_length += consumed + len(result.new_events)
        return result

    # -- applying one event -----------------------------------------------------------------

    def _apply(self, event: HistoryEvent) -> None:
        state = self.state
        if isinstance(event, StepStarted):
            state.now = event.timestamp
        elif isinstance(event, ExecutionStarted):
            state.name = event.name
            state.execution_id = event.execution_id
            state.input = event.input
            state.version = event.version
            self._start()
        elif isinstance(event, ScheduledEvent):
            self._confirm(event)
        elif isinstance(event, (PatchMarker, ExecutionRewound)):
            return  # read before replay (markers), or for people (rewinds): the code does not observe them
        elif self.is_finished:
            # An event that arrives in the same step after continue_as_new belongs to the next execution.
            continuing = state.continue_as_new
            if isinstance(event, EventRaised) and continuing is not None and continuing[1]:
                self._result.carryover_events.append(event)
            return
        elif isinstance(event, (TaskCompleted, SubOrchestrationCompleted)):
            self._on_task_completed(event.task_id, event.result)
        elif isinstance(event, (TaskFailed, SubOrchestrationFailed)):
            self._on_task_failed(event.task_id, event.failure)
        elif isinstance(event, TimerFired):
            self._on_timer_fired(event.task_id)
        elif isinstance(event, EventRaised) and state.deliver_event(event):
            self._resume()  # a wait took it; an event nobody waits for stays buffered
        # ExecutionSuspended/Resumed/Terminated and ExecutionCompleted change the instance's status,
        # which the storage layer owns; the code does not observe them.

    def _confirm(self, recorded: ScheduledEvent) -> None:
        expected = self.state.new_actions.pop(recorded.task_id, None)
        same = (
            expected is not None
            and type(expected) is type(recorded)
            and getattr(expected, "name", None) == getattr(recorded, "name", None)
            and getattr(expected, "target_task_id", None) == getattr(recorded, "target_task_id", None)
            and getattr(expected, "operation", None) == getattr(recorded, "operation", None)
            and getattr(expected, "entity", None) == getattr(recorded, "entity", None)
        )
        if not same:
            self.divergence = Divergence(
                recorded.task_id, describe_action(recorded), describe_action(expected), self.location()
            )
            raise NonDeterminismError(
                f"orchestration {self.state.name!r} (instance {self.state.instance_id!r}) is not "
                f"deterministic: its history recorded {describe_action(recorded)} as task #{recorded.task_id}, "
                f"but the code now does {describe_action(expected)}. Guard a change to what an orchestration "
                "schedules with context.is_patched(...) or ship it as a new version (DurableApp(version=...)), "
                "and check it with `durable-agents replay` before deploying; then rewind the failed instance."
            )

    def location(self) -> str | None:
        """The file and line where the code is suspended (following `yield from` to the innermost frame)."""
        generator: Any = self._generator
        frame = None
        while generator is not None and getattr(generator, "gi_frame", None) is not None:
            frame = generator.gi_frame
            generator = getattr(generator, "gi_yieldfrom", None)
        if frame is None:
            return None
        return f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"

    def _on_task_completed(self, task_id: int, result: Json) -> None:
        task = self.state.open_tasks.pop(task_id, None)
        if task is None:
            return
        if isinstance(task, EntityLockTask):
            task._complete(grant(self.state, task))
            self._resume()
            return
        kind = "activity" if isinstance(task, ActivityTask) else "orchestration"
        name = task.name if isinstance(task, (ActivityTask, SubOrchestrationTask)) else ""
        if isinstance(task, EntityCallTask):
            task._complete(result)  # an entity's result is plain JSON: it declares no type
            self._resume()
            return
        try:
            value = self.state.decode_result(kind, name, result)
        except Exception as error:  # a result that no longer fits its type
            task._fail(error)
        else:
            task._complete(value)
        self._resume()

    def _on_task_failed(self, task_id: int, failure: FailureInfo) -> None:
        state = self.state
        task = state.open_tasks.pop(task_id, None)
        if task is None:
            return
        details = failure.details()
        if isinstance(task, (ActivityTask, SubOrchestrationTask)):
            retry = task.retry
            if retry is not None and retry.attempt < retry.policy.max_number_of_attempts:
                delay = retry.policy.delay_before(retry.attempt + 1)
                deadline = (
                    retry.first_attempt_at + retry.policy.retry_timeout
                    if retry.first_attempt_at is not None and retry.policy.retry_timeout is not None
                    else None
                )
                if deadline is None or state.now + delay <= deadline:
                    state.schedule_retry(task, state.now + max(delay, timedelta(0)))
                    return
            details = details.through(_link(task, state.instance_id))
            message = str(details)
            state.failed_tasks[task.task_id] = task
        elif isinstance(task, EntityCallTask):
            details = details.through(FailedTask("entity operation", task.name, task_id, state.instance_id))
            message = str(details)
        else:
            if isinstance(task, EntityLockTask):
                state.lock_requested = False
            message = f"task #{task_id} failed: {details}"
        task._fail(TaskFailedError(message, details))
        self._resume()

    def _on_timer_fired(self, task_id: int) -> None:
        state = self.state
        retried = state.retry_timers.pop(task_id, None)
        if retried is not None:
            state.reschedule(retried)
            return
        waiter = state.event_timeouts.pop(task_id, None)
        if waiter is not None:
            state.open_tasks.pop(task_id, None)
            if not waiter.is_complete:
                state.drop_wait(waiter)
                waiter._fail(EventTimeoutError(f"no event {waiter.name!r} arrived before the wait timed out"))
                self._resume()
            return
        timer = state.open_tasks.pop(task_id, None)
        if timer is not None:
            timer._complete(None)
            self._resume()

    # -- driving the generator --------------------------------------------------------------

    def _start(self) -> None:
        try:
            produced = self._orchestrator(self.context)
        except Exception as error:
            self._finish_failed(FailureDetails.from_exception(error))
            return
        if inspect.isgenerator(produced):
            self._generator = produced
            self._advance(produced.send, None)
        else:
            self._finish(produced)

    def _resume(self) -> None:
        while self._generator is not None and self._awaiting is not None and self._awaiting.is_complete:
            done = self._awaiting
            generator = self._generator
            if done.exception is not None:
                self._advance(generator.throw, done.exception)
            else:
                self._advance(generator.send, done._value)

    def _advance(self, step: Callable[[Any], Any], argument: Any) -> None:
        """Run the code up to its next yield, feeding it `argument` through `step` (send or throw)."""
        try:
            yielded = step(argument)
        except StopIteration as stop:
            self._finish(stop.value)
            return
        except Exception as error:
            self._finish_failed(FailureDetails.from_exception(error))
            return
        if self.state.continue_as_new is not None:
            self._finish(None)
            return
        if isinstance(yielded, (list, tuple)):
            stray = next((item for item in yielded if not isinstance(item, Task)), None)
            yielded = WhenAllTask(list(yielded)) if stray is None else stray
        if not isinstance(yielded, Task):
            self._finish_failed(
                FailureDetails.from_exception(OrchestrationYieldError(not_a_task(self.state.name, yielded)))
            )
            return
        self._awaiting = yielded
        if yielded.is_complete:
            self._resume()

    def _finish(self, value: Any) -> None:
        state = self.state
        self._close_generator()
        release_on_exit(state)
        if state.continue_as_new is not None:
            new_input, save_events = state.continue_as_new
            carry = state.unconsumed_events() if save_events else []
            self._result.outcome = "continued_as_new"
            self._result.continue_input = new_input
            self._result.carryover_events = carry
            self._result.new_events.append(ExecutionCompleted(status="CONTINUED_AS_NEW", result=new_input))
            return
        try:
            encoded = encode(value, what=f"output of orchestration {state.name!r}", limit=state.max_payload_bytes)
        except Exception as error:
            self._finish_failed(FailureDetails.from_exception(error))
            return
        self._result.outcome = "completed"
        self._result.result = encoded
        self._result.new_events.append(ExecutionCompleted(status="COMPLETED", result=encoded))

    def _finish_failed(self, details: FailureDetails) -> None:
        self._close_generator()
        release_on_exit(self.state)
        self._result.outcome = "failed"
        self._result.failure = details
        self._result.new_events.append(ExecutionCompleted(status="FAILED", failure=FailureInfo.of(details)))

    def _close_generator(self) -> None:
        generator, self._generator, self._awaiting = self._generator, None, None
        if generator is not None:
            generator.close()
