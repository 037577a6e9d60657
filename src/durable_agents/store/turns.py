"""Whether an agent turn was ever asked for: a reader of its reply can then tell "not yet" from "never"."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import exists, select, union
from sqlalchemy.orm import Session

from .. import ids
from ..models import HistoryRow, InboxRow, Instance


def turn_known(session: Session, taskhub: str, correlation_id: str) -> bool:
    """True if the turn's instance exists, or a session entity holds its request: in its inbox until
    its step runs, or in its history while an earlier turn of the session runs (or the entity's
    next execution has it). Only the entities' rows are read: `@agent:` ids, current executions."""
    entities = ids.AGENT_SESSION_PREFIX
    started = exists().where(
        Instance.taskhub == taskhub, Instance.instance_id == ids.agent_turn_instance_id(correlation_id)
    )
    queued = exists().where(
        InboxRow.taskhub == taskhub,
        InboxRow.instance_id.startswith(entities, autoescape=True),
        InboxRow.event[("data", "correlation_id")].as_string() == correlation_id,
    )
    buffered = exists().where(
        HistoryRow.taskhub == taskhub,
        HistoryRow.instance_id.startswith(entities, autoescape=True),
        HistoryRow.event[("data", "correlation_id")].as_string() == correlation_id,
    )
    return bool(session.scalar(select(started | queued | buffered)))


def busy_entities(session: Session, taskhub: str, entity_ids: Collection[str]) -> set[str]:
    """Of these session entities, those with a turn under way (a turn instance not finished) or a
    request not yet taken up (in the inbox); the others wait, idle, for their next turn."""
    if not entity_ids:
        return set()
    running = select(Instance.parent_instance_id).where(
        Instance.taskhub == taskhub,
        Instance.parent_instance_id.in_(entity_ids),
        Instance.status.in_(["PENDING", "RUNNING", "SUSPENDED"]),
    )
    queued = select(InboxRow.instance_id).where(InboxRow.taskhub == taskhub, InboxRow.instance_id.in_(entity_ids))
    return {str(entity) for entity in session.scalars(union(running, queued))}
