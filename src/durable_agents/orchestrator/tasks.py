"""Tasks: what an orchestration yields, completed by the replay engine as history arrives."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

from ..errors import InvalidInstanceStateError, OrchestrationYieldError, TaskCancelledError
from .retry import RetryPolicy

T = TypeVar("T")


class Task(Generic[T]):
    """A durable operation's future. Yield it from an orchestration to wait for it."""

    def __init__(self) -> None:
        self._is_complete = False
        self._value: Any = None
        self._exception: BaseException | None = None
        self._parents: list[CompositeTask[Any]] = []
        #: Set by the engine on the tasks it can cancel (timers, event waits, activities, sub-orchestrations).
        self._canceller: Callable[[Task[Any]], None] | None = None

    @property
    def is_complete(self) -> bool:
        return self._is_complete

    @property
    def is_failed(self) -> bool:
        return self._exception is not None

    @property
    def exception(self) -> BaseException | None:
        return self._exception

    @property
    def result(self) -> T:
        """The task's value; raises the task's error if it failed."""
        if not self._is_complete:
            raise InvalidInstanceStateError(
                "this task has not completed yet; yield it (or a task_any/task_all containing it) first"
            )
        if self._exception is not None:
            raise self._exception
        return self._value  # type: ignore[no-any-return]

    def get_result(self) -> T:
        return self.result

    @property
    def is_cancelled(self) -> bool:
        return isinstance(self._exception, TaskCancelledError)

    def cancel(self) -> bool:
        """Cancel the task unless it has completed already (then False, and nothing changes).

        What it left pending is dropped: a timer never fires, a wait on an event no longer takes one
        (a later wait of that name gets the next event), an activity not started never runs and one
        running is not interrupted but its outcome is ignored, a sub-orchestration is terminated. The
        cancellation is recorded in the history. Yielding a cancelled task raises TaskCancelledError.
        """
        if self._is_complete:
            return False
        if self._canceller is None:
            raise InvalidInstanceStateError(
                f"{self!r} cannot be cancelled; cancel the timers, event waits, activities or "
                "sub-orchestrations it waits on"
            )
        self._canceller(self)
        return True

    def _complete(self, value: Any) -> None:
        if self._is_complete:
            return
        self._is_complete = True
        self._value = value
        for parent in self._parents:
            parent._on_child_completed(self)

    def _fail(self, exception: BaseException) -> None:
        if self._is_complete:
            return
        self._is_complete = True
        self._exception = exception
        for parent in self._parents:
            parent._on_child_completed(self)


class CompletableTask(Task[T]):
    """A task backed by one history entry (activity, timer, sub-orchestration, event)."""

    def __init__(self, task_id: int) -> None:
        super().__init__()
        self.task_id = task_id


class ActivityTask(CompletableTask[T]):
    def __init__(self, task_id: int, name: str, input: Any, retry_policy: RetryPolicy | None) -> None:
        super().__init__(task_id)
        self.name = name
        self.input = input
        self.retry = RetryState(retry_policy) if retry_policy else None
        self.tags: dict[str, str] | None = None

    def __repr__(self) -> str:
        return f"<ActivityTask #{self.task_id} {self.name!r}>"


class SubOrchestrationTask(CompletableTask[T]):
    def __init__(self, task_id: int, name: str, instance_id: str, input: Any, retry_policy: RetryPolicy | None) -> None:
        super().__init__(task_id)
        self.name = name
        self.instance_id = instance_id
        self.input = input
        self.retry = RetryState(retry_policy) if retry_policy else None
        self.tags: dict[str, str] | None = None
        #: The child's own version, if the code gave one (else it has its parent's).
        self.version: str | None = None

    def __repr__(self) -> str:
        return f"<SubOrchestrationTask #{self.task_id} {self.name!r} ({self.instance_id})>"


class TimerTask(CompletableTask[None]):
    def __init__(self, task_id: int, fire_at: datetime) -> None:
        super().__init__(task_id)
        self.fire_at = fire_at

    def __repr__(self) -> str:
        return f"<TimerTask #{self.task_id} at {self.fire_at.isoformat()}>"


class ExternalEventTask(Task[T]):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def __repr__(self) -> str:
        return f"<ExternalEventTask {self.name!r}>"


class RetryState:
    """Attempts made so far under a retry policy; lives on the task being retried."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.attempt = 1
        self.first_attempt_at: datetime | None = None


def not_a_task(orchestration: str, value: object) -> str:
    return (
        f"orchestration {orchestration!r} yielded {value!r} ({type(value).__name__}); yield a task from "
        "the context (call_activity, create_timer, wait_for_external_event, task_all, ...) or a list of them"
    )


class CompositeTask(Task[T]):
    def __init__(self, children: Sequence[Task[Any]]) -> None:
        super().__init__()
        for child in children:
            if not isinstance(child, Task):
                raise OrchestrationYieldError(
                    f"task_all and task_any take tasks from the context, got {child!r} ({type(child).__name__})"
                )
        self.children = list(children)
        for child in self.children:
            child._parents.append(self)
        for child in self.children:
            if child.is_complete:
                self._on_child_completed(child)

    def _on_child_completed(self, child: Task[Any]) -> None:
        raise NotImplementedError


class WhenAllTask(CompositeTask[list[Any]]):
    """Completes with every child's value in order; fails as soon as one child fails."""

    def __init__(self, children: Sequence[Task[Any]]) -> None:
        self._remaining = len(children)
        super().__init__(children)
        if not self.children:
            self._complete([])

    def _on_child_completed(self, child: Task[Any]) -> None:
        if self.is_complete:
            return
        if child.exception is not None:
            self._fail(child.exception)
            return
        self._remaining -= 1
        if self._remaining == 0:
            self._complete([c._value for c in self.children])


class WhenAnyTask(CompositeTask[Task[Any]]):
    """Completes with the first child to finish (success or failure): the task object itself."""

    def __init__(self, children: Sequence[Task[Any]]) -> None:
        if not children:
            raise ValueError("task_any needs at least one task")
        super().__init__(children)

    def _on_child_completed(self, child: Task[Any]) -> None:
        self._complete(child)


class MappedTask(CompositeTask[T]):
    """Completes with `transform(inner.result)`; an error in the transform fails the task.

    With `on_error`, a failure of `inner` becomes the value `on_error(exception)` instead.
    """

    def __init__(
        self,
        inner: Task[Any],
        transform: Callable[[Any], T],
        on_error: Callable[[BaseException], T] | None = None,
    ) -> None:
        self._transform = transform
        self._on_error = on_error
        super().__init__([inner])

    def _on_child_completed(self, child: Task[Any]) -> None:
        if child.exception is not None and self._on_error is None:
            self._fail(child.exception)
            return
        try:
            if child.exception is not None:
                assert self._on_error is not None
                value = self._on_error(child.exception)
            else:
                value = self._transform(child._value)
        except Exception as error:
            self._fail(error)
        else:
            self._complete(value)
