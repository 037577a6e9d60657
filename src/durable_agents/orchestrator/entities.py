"""Entities seen from an orchestration: calls and signals are actions, locks make a critical section.

A critical section locks its entities one by one in their sorted order (every lock is taken in that
order, so two sections never wait on each other in a cycle); while it holds them, other callers'
operations wait at the entities, and its own calls may only go to the entities it locked.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Any, TypeVar

from .. import ids
from ..errors import EntityLockError
from ..ids import EntityId
from ..serialization import encode
from .history import EntityCalled, EntityLockRequested, EntitySignaled, EntityUnlockSent
from .replay_state import ReplayState
from .tasks import CompletableTask

T = TypeVar("T")


class EntityCallTask(CompletableTask[T]):
    def __init__(self, task_id: int, entity: EntityId, operation: str) -> None:
        super().__init__(task_id)
        self.entity = entity
        self.operation = operation
        self.name = f"{entity}.{operation}"

    def __repr__(self) -> str:
        return f"<EntityCallTask #{self.task_id} {self.name!r}>"


class EntityLockTask(CompletableTask["EntityLock"]):
    def __init__(self, task_id: int, entities: tuple[EntityId, ...], lock_id: str) -> None:
        super().__init__(task_id)
        self.entities = entities
        self.lock_id = lock_id

    def __repr__(self) -> str:
        return f"<EntityLockTask #{self.task_id} {', '.join(map(str, self.entities))}>"


class EntityLock:
    """A critical section the orchestration holds: use it in `with`, or call `release()` when done.

    An orchestration that ends inside it releases it as it ends."""

    def __init__(self, state: ReplayState, lock_id: str, entities: tuple[EntityId, ...]) -> None:
        self._state = state
        self.lock_id = lock_id
        self.entities = entities

    @property
    def is_held(self) -> bool:
        return self._state.held_lock is self

    def release(self) -> None:
        """Unlock every entity of the section (once; later calls do nothing)."""
        state = self._state
        if state.held_lock is not self:
            return
        state.held_lock = None
        names = tuple(str(entity) for entity in self.entities)
        state.record(EntityUnlockSent(task_id=state.next_id(), entities=names, lock_id=self.lock_id))

    def __enter__(self) -> EntityLock:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.release()


def _lock_for(state: ReplayState, entity: EntityId, what: str) -> str | None:
    """The critical section `entity` is locked in, if the code holds one; refuses an entity outside it."""
    held: EntityLock | None = state.held_lock
    if held is None:
        return None
    if entity not in held.entities:
        raise EntityLockError(
            f"{what} inside a critical section over {', '.join(map(str, held.entities))}: call only the entities "
            "the section locked (or lock this one too), since waiting on another could deadlock"
        )
    return held.lock_id


def call_entity(state: ReplayState, entity: EntityId | str, operation: str, input: Any) -> EntityCallTask[Any]:
    target = EntityId.of(entity)
    what = f"call_entity({str(target)!r}, {operation!r})"
    lock_id = _lock_for(state, target, what)
    encoded = encode(input, what=f"input of {what}", limit=state.max_payload_bytes)
    task: EntityCallTask[Any] = EntityCallTask(state.next_id(), target, operation)
    state.open_tasks[task.task_id] = task
    state.record(
        EntityCalled(task_id=task.task_id, entity=str(target), operation=operation, input=encoded, lock_id=lock_id)
    )
    return task


def signal_entity(state: ReplayState, entity: EntityId | str, operation: str, input: Any) -> None:
    target = EntityId.of(entity)
    held: EntityLock | None = state.held_lock
    # A signal never waits, so it may go anywhere; to a locked entity it is part of the section.
    lock_id = held.lock_id if held is not None and target in held.entities else None
    what = f"input of signal_entity({str(target)!r}, {operation!r})"
    encoded = encode(input, what=what, limit=state.max_payload_bytes)
    state.record(
        EntitySignaled(task_id=state.next_id(), entity=str(target), operation=operation, input=encoded, lock_id=lock_id)
    )


def lock_entities(state: ReplayState, entities: Iterable[EntityId | str]) -> EntityLockTask:
    targets = tuple(sorted({EntityId.of(entity) for entity in entities}))
    if not targets:
        raise ValueError("lock_entities needs at least one entity")
    if state.held_lock is not None or state.lock_requested:
        raise EntityLockError(
            "lock_entities inside a critical section (or while another lock is being taken): lock every entity "
            "the section needs in one lock_entities call"
        )
    task_id = state.next_id()
    lock_id = ids.entity_lock_id(state.instance_id, state.execution_id, task_id)
    task = EntityLockTask(task_id, targets, lock_id)
    state.open_tasks[task_id] = task
    state.lock_requested = True
    state.record(EntityLockRequested(task_id=task_id, entities=tuple(map(str, targets)), lock_id=lock_id))
    return task


def grant(state: ReplayState, task: EntityLockTask) -> EntityLock:
    """The entities of `task` are all locked for this orchestration: its critical section begins."""
    lock = EntityLock(state, task.lock_id, task.entities)
    state.lock_requested = False
    state.held_lock = lock
    return lock


def release_on_exit(state: ReplayState) -> None:
    """The execution ends: a critical section it still holds ends with it."""
    held: EntityLock | None = state.held_lock
    if held is not None:
        held.release()
