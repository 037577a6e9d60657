"""Posting events to an instance's inbox, at most once per dedupe key."""

from __future__ import annotations

from sqlalchemy import Insert, func, select
from sqlalchemy.orm import Session

from ..models import inbox_table
from ..orchestrator.history import HistoryEvent, event_to_json
from . import dialect

NOTIFY_CHANNEL = "durable_agents"

#: The unique key under which an event is posted at most once.
DEDUPE_KEY = ["taskhub", "instance_id", "dedupe_key"]


def post(
    session: Session,
    taskhub: str,
    instance_id: str,
    event: HistoryEvent,
    *,
    execution_id: str | None = None,
    dedupe_key: str | None = None,
) -> None:
    """Add `event` to the instance's inbox; a second post under the same dedupe key does nothing."""
    session.execute(
        post_statement(session, taskhub, instance_id, event, execution_id=execution_id, dedupe_key=dedupe_key)
    )


def post_statement(
    session: Session,
    taskhub: str,
    instance_id: str,
    event: HistoryEvent,
    *,
    execution_id: str | None = None,
    dedupe_key: str | None = None,
) -> Insert:
    """The INSERT of `post()`, to run on its own or as part of a larger statement."""
    statement = (
        dialect.of(session)
        .insert(inbox_table)
        .values(
            taskhub=taskhub,
            instance_id=instance_id,
            execution_id=execution_id,
            dedupe_key=dedupe_key,
            event=event_to_json(event),
        )
    )
    upsert: Insert = statement.on_conflict_do_nothing(index_elements=DEDUPE_KEY)
    return upsert


def notify(session: Session, taskhub: str, instance_id: str) -> None:
    """Tell waiting clients (LISTEN) that the instance changed; delivered when the transaction commits.

    SQLite has no notifications: its clients poll instead.
    """
    send_notification(session, notify_payload(taskhub, instance_id))


def send_notification(session: Session, payload: str) -> None:
    """`notify()` with its payload made already; nothing where the database has no notifications."""
    if dialect.of(session).notifies:
        session.execute(select(func.pg_notify(NOTIFY_CHANNEL, payload)))


#: Separates a notification's instance from the status the instance had when it changed (if told).
STATUS_SEPARATOR = "\x1e"


def notify_payload(taskhub: str, instance_id: str, status: str | None = None) -> str:
    """What `notify()` sends, and (without `status`) what a client waiting for the instance listens for.
    With `status`, the status the change left it in: a waiter that needs another reads nothing."""
    key = f"{taskhub}\x1f{instance_id}"
    return f"{key}{STATUS_SEPARATOR}{status}" if status else key
