"""What an orchestration step sends to entities: operations, lock requests and releases, into their inboxes."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.orm import Session

from .. import ids
from ..errors import NotRegisteredError
from ..ids import EntityId
from ..orchestrator.history import (
    EntityCalled,
    EntityLockRequest,
    EntityLockRequested,
    EntityOperation,
    EntitySignaled,
    EntityUnlock,
    EntityUnlockSent,
    HistoryEvent,
)
from ..registry import Registry
from ..store import decisions, entities, entity_locks
from ..store.decisions import Wakes
from ..store.locked import LockedInstance

log = logging.getLogger(__name__)


def send_to_entities(
    session: Session, instance: LockedInstance, events: Sequence[HistoryEvent], registry: Registry
) -> Wakes:
    """Post what the step's new actions send to entities, each once (keyed by the sending task); a call to
    an entity or operation nobody registered fails its task at once, with the names that exist."""
    wakes: Wakes = []
    hub, sender, execution = instance.taskhub, instance.instance_id, instance.execution_id
    ensured: set[EntityId] = set()  # a step that signals one entity 100 times creates it once
    for event in events:
        if isinstance(event, EntityCalled | EntitySignaled):
            entity = EntityId.of(event.entity)
            try:
                registry.entity(entity.name).check_operation(event.operation)
            except NotRegisteredError as error:
                if isinstance(event, EntityCalled):
                    wakes += decisions.fail_task_now(session, instance, event.task_id, error)
                else:
                    log.warning("signal from %s dropped: %s", sender, error)
                continue
            operation = EntityOperation(
                operation=event.operation,
                input=event.input,
                caller_instance_id=sender,
                caller_execution_id=execution,
                task_id=event.task_id if isinstance(event, EntityCalled) else None,
                lock_id=event.lock_id,
            )
            key = ids.entity_message_key(sender, execution, event.task_id, entity)
            entities.post(session, hub, entity, operation, dedupe_key=key, ensured=ensured)
            wakes.append(entity.instance_id)
        elif isinstance(event, EntityLockRequested):
            wakes += _request_lock(session, instance, event, registry)
        elif isinstance(event, EntityUnlockSent):
            held = [EntityId.of(name) for name in event.entities]
            record = _records_locks(registry, held)
            released = entity_locks.unlock_now(session, hub, held, event.lock_id, sender, record=record)
            for entity in held:
                if entity in released:
                    continue
                key = ids.entity_message_key(sender, execution, event.task_id, entity)
                unlock = EntityUnlock(lock_id=event.lock_id)
                entities.post(session, hub, entity, unlock, dedupe_key=key, ensured=ensured)
                wakes.append(entity.instance_id)
    return wakes


def _request_lock(session: Session, instance: LockedInstance, event: EntityLockRequested, registry: Registry) -> Wakes:
    """Send the lock request to the first entity (in sorted order); each passes it on once it is locked."""
    try:
        for name in event.entities:
            registry.entity(EntityId.of(name).name)
    except NotRegisteredError as error:
        return decisions.fail_task_now(session, instance, event.task_id, error)
    first = EntityId.of(event.entities[0])
    request = EntityLockRequest(
        lock_id=event.lock_id,
        holder_instance_id=instance.instance_id,
        holder_execution_id=instance.execution_id,
        task_id=event.task_id,
        entities=event.entities,
    )
    key = ids.entity_message_key(instance.instance_id, instance.execution_id, event.task_id, first)
    entities.post(session, instance.taskhub, first, request, dedupe_key=key)
    return [first.instance_id]


def grant_idle_locks(
    session: Session, instance: LockedInstance, events: Sequence[HistoryEvent], registry: Registry
) -> set[int]:
    """Take the locks these new actions ask for whose entities are all idle, here and now (see
    `store/entity_locks`); the task ids of those granted, which no message then carries."""
    granted: set[int] = set()
    for event in events:
        if not isinstance(event, EntityLockRequested):
            continue
        targets = [EntityId.of(name) for name in event.entities]
        if not all(target.name in registry.entities for target in targets):
            continue  # the message path fails the task with the names that exist
        record, holder = _records_locks(registry, targets), instance.instance_id
        if entity_locks.lock_now(session, instance.taskhub, targets, event.lock_id, holder, record=record):
            granted.add(event.task_id)
    return granted


def _records_locks(registry: Registry, entities: Sequence[EntityId]) -> bool:
    """Whether a lock on `entities` joins their recent operations (not for agent sessions')."""
    try:
        return all(registry.entity(entity.name).records_locks for entity in entities)
    except NotRegisteredError:
        return True
