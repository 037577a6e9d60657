"""Whether an agent turn was ever asked for: a reader of its reply can then tell "not yet" from "never"."""

from __future__ import annotations

from sqlalchemy import exists, select
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
