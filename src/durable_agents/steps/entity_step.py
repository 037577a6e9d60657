"""The entity step: apply an entity's waiting messages in arrival order, one at a time, in one transaction.

The instance's row lock makes an entity's steps strictly one at a time; its state, its lock, the
answers to its callers and the removal of the messages it consumed commit together, so each message
takes effect exactly once however often the step runs or its worker dies. No worker slot is held
between steps: an entity with nothing in its inbox is only a row.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from .. import ids
from ..errors import FailureDetails, NotRegisteredError
from ..ids import EntityId
from ..orchestrator.history import (
    EntityLockRequest,
    EntityMessage,
    EntityOperation,
    EntityUnlock,
    FailureInfo,
    TaskCompleted,
    TaskFailed,
    event_from_json,
    event_to_json,
)
from ..registry import Registry
from ..serialization import encode
from ..store import entities, inbox
from ..store.entities import LoadedEntity
from ..store.step_reads import read_inbox
from .outcome import Dispatch, StepOutcome

if TYPE_CHECKING:
    from ..entity_specs import EntitySpec

log = logging.getLogger(__name__)


def step_entity(
    session: Session, registry: Registry, max_payload_bytes: int, taskhub: str, instance_id: str
) -> StepOutcome:
    """One step of the entity `instance_id`: everything in its inbox, and what its lock held back."""
    locked = entities.lock(session, taskhub, instance_id)
    if locked is None:
        return StepOutcome()
    loaded, now = locked
    rows = read_inbox(session, taskhub, instance_id)
    if not rows:
        return StepOutcome()  # a second wake-up for messages a step already took
    entity = EntityId.from_instance_id(instance_id)
    try:
        spec: EntitySpec | None = registry.entity(entity.name)
        missing: Exception | None = None
    except NotRegisteredError as error:
        spec, missing = None, error
    run = _EntityRun(session, taskhub, entity, spec, missing, loaded, now, max_payload_bytes)
    messages = [_message(data, instance_id) for data in [*loaded.queued, *(row.event for row in rows)]]
    run.process([message for message in messages if message is not None])
    consumed = [row.id for row in rows]
    entities.save_step(session, taskhub, instance_id, consumed, loaded, run.applied, run.records, now)
    return StepOutcome(Dispatch(steps=run.wakes))


def _message(data: dict[str, Any], instance_id: str) -> EntityMessage | None:
    message = event_from_json(data)
    if isinstance(message, EntityOperation | EntityLockRequest | EntityUnlock):
        return message
    # What only an orchestration understands (an event raised, a termination, sent by id): dropped here.
    log.warning("%s dropped by entity %s, which takes only operations", message.type, instance_id)
    return None


@dataclass
class _EntityRun:
    session: Session
    taskhub: str
    entity: EntityId
    spec: EntitySpec | None
    #: Why the entity cannot run here (its name is not registered on this worker).
    missing: Exception | None
    loaded: LoadedEntity
    now: datetime
    max_payload_bytes: int
    records: list[dict[str, Any]] = field(default_factory=list)
    wakes: list[str] = field(default_factory=list)
    applied: int = 0

    def process(self, messages: list[EntityMessage]) -> None:
        """Apply `messages` in order; while another caller holds the lock, theirs wait (in order) in `queued`."""
        loaded = self.loaded
        pending = deque(messages)
        held: list[EntityMessage] = []
        while pending:
            message = pending.popleft()
            if isinstance(message, EntityUnlock):
                if message.lock_id == loaded.locked_by:  # else a late second release: nothing holds it
                    self._record_lock("unlock", loaded.lock_holder)
                    loaded.locked_by = loaded.lock_holder = None
                    pending.extendleft(reversed(held))
                    held = []
            elif loaded.locked_by is not None and message.lock_id != loaded.locked_by:
                held.append(message)
            elif isinstance(message, EntityLockRequest):
                self._lock(message)
            else:
                self._apply(message)
        loaded.queued = [event_to_json(message) for message in held]

    def _lock(self, request: EntityLockRequest) -> None:
        live = entities.live_execution(self.session, self.taskhub, request.holder_instance_id)
        if live != request.holder_execution_id:  # it ended (or continued as new) while its lock was on the way
            self._record_lock("lock", request.holder_instance_id, failure={"message": "its holder has ended"})
            return
        self.loaded.locked_by = request.lock_id
        self.loaded.lock_holder = request.holder_instance_id
        self._record_lock("lock", request.holder_instance_id)
        following = request.position + 1
        if following < len(request.entities):
            target = EntityId.of(request.entities[following])
            entities.post(
                self.session,
                self.taskhub,
                target,
                request.model_copy(update={"position": following}),
                dedupe_key=ids.entity_lock_forward_key(request.lock_id, following),
            )
            self.wakes.append(target.instance_id)
        else:
            granted = TaskCompleted(task_id=request.task_id)
            self._answer(request.holder_instance_id, request.holder_execution_id, granted)

    def _apply(self, message: EntityOperation) -> None:
        kind = "call" if message.task_id is not None else "signal"
        what = f"entity {str(self.entity)!r} operation {message.operation!r}"
        try:
            if self.spec is None:
                assert self.missing is not None
                raise self.missing
            new_state, result = self.spec.apply(self.entity, self.loaded.state, message.operation, message.input)
            state = encode(new_state, what=f"state of {what}", limit=self.max_payload_bytes)
            result = encode(result, what=f"result of {what}", limit=self.max_payload_bytes)
        except Exception as error:
            details = FailureDetails.from_exception(error)
            if message.task_id is None:
                log.warning("signal to %s failed: %s", what, details)
            self._record(kind, message.operation, message.caller_instance_id, message.input, failure=details.to_json())
            outcome: TaskCompleted | TaskFailed = TaskFailed(
                task_id=message.task_id or 0, failure=FailureInfo.of(details)
            )
        else:
            self.loaded.state = state
            self.applied += 1
            self._record(kind, message.operation, message.caller_instance_id, message.input, result=result)
            outcome = TaskCompleted(task_id=message.task_id or 0, result=result)
        self.loaded.operation_count += 1
        if message.task_id is not None and message.caller_instance_id and message.caller_execution_id:
            self._answer(message.caller_instance_id, message.caller_execution_id, outcome)

    def _answer(self, instance_id: str, execution_id: str, outcome: TaskCompleted | TaskFailed) -> None:
        """The outcome of the caller's task, once; to a caller that has ended or been purged, nothing."""
        if entities.live_execution(self.session, self.taskhub, instance_id) is None:
            return
        key = ids.task_key(execution_id, outcome.task_id)
        inbox.post(self.session, self.taskhub, instance_id, outcome, execution_id=execution_id, dedupe_key=key)
        self.wakes.append(instance_id)

    def _record_lock(self, kind: str, holder: str | None, failure: dict[str, Any] | None = None) -> None:
        if self.spec is None or self.spec.records_locks:
            self._record(kind, kind, holder, failure=failure)

    def _record(
        self,
        kind: str,
        operation: str,
        caller: str | None,
        input: Any = None,
        *,
        result: Any = None,
        failure: dict[str, Any] | None = None,
    ) -> None:
        self.records.append(
            {
                "kind": kind,
                "operation": operation,
                "caller": caller,
                "input": input,
                "result": result,
                "failure": failure,
                "applied_at": self.now,
            }
        )
