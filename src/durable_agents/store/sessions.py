"""Agent sessions in Postgres: loading a conversation, committing a turn once, reading and managing sessions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Interval, Select, bindparam, delete, func, literal, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from ..errors import SessionNotFoundError
from ..models import AgentMessageRow, AgentSessionRow, agent_messages_table, agent_sessions_table
from . import dialect
from .combined_writes import insert_from_json, json_rows


@dataclass(frozen=True)
class SessionInfo:
    """A stored conversation: its counters and (when asked for) its messages."""

    taskhub: str
    agent: str
    session_key: str
    message_count: int
    turn_count: int
    prompt_tokens: int
    completion_tokens: int
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    messages: list[dict[str, Any]]


def _of_session(table: Any, taskhub: str, agent: str, session_key: str) -> Any:
    """The WHERE clause selecting one session's rows of `table`."""
    return (table.taskhub == taskhub) & (table.agent == agent) & (table.session_key == session_key)


def _as_chat_message(row: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"role": row.role, "content": row.content}
    if row.tool_calls:
        message["tool_calls"] = row.tool_calls
    if row.tool_call_id:
        message["tool_call_id"] = row.tool_call_id
    return message


def load_messages(
    session: Session, taskhub: str, agent: str, session_key: str, keep_last: int | None = None
) -> list[dict[str, Any]]:
    """The committed conversation as chat messages, oldest first (the last `keep_last` of them)."""
    # Core rows, not ORM objects: every model call reads the conversation, and only these four columns.
    columns = agent_messages_table.c
    statement = select(columns.role, columns.content, columns.tool_calls, columns.tool_call_id).where(
        _of_session(columns, taskhub, agent, session_key)
    )
    if keep_last is None:
        rows = list(session.execute(statement.order_by(columns.id)))
    else:
        rows = list(session.execute(statement.order_by(columns.id.desc()).limit(keep_last)))[::-1]
        # A window must not start inside a tool exchange: the API refuses orphaned tool results.
        while rows and rows[0].role != "user":
            rows.pop(0)
    return [_as_chat_message(row) for row in rows]


def load_since_summary(
    session: Session, taskhub: str, agent: str, session_key: str
) -> tuple[str | None, list[tuple[int, dict[str, Any]]]]:
    """The session's summary (if any) and the (id, message) pairs that came after it."""
    row = session.get(AgentSessionRow, (taskhub, agent, session_key))
    statement = select(AgentMessageRow).where(_of_session(AgentMessageRow, taskhub, agent, session_key))
    if row is not None and row.summary_upto is not None:
        statement = statement.where(AgentMessageRow.id > row.summary_upto)
    messages = [(m.id, _as_chat_message(m)) for m in session.scalars(statement.order_by(AgentMessageRow.id))]
    return (row.summary if row is not None else None), messages


def save_summary(session: Session, taskhub: str, agent: str, session_key: str, summary: str, upto: int) -> None:
    session.execute(
        update(AgentSessionRow)
        .where(_of_session(AgentSessionRow, taskhub, agent, session_key))
        .values(summary=summary, summary_upto=upto)
    )


def commit_turn(
    session: Session,
    *,
    taskhub: str,
    agent: str,
    session_key: str,
    correlation_id: str,
    messages: list[dict[str, Any]],
    orchestration_instance_id: str | None,
    ttl: timedelta | None,
) -> int:
    """Append a turn's messages; a repeated commit of the same turn adds nothing. Returns rows added."""
    rows = [
        {
            "taskhub": taskhub,
            "agent": agent,
            "session_key": session_key,
            "correlation_id": correlation_id,
            "position": position,
            "role": message["role"],
            "content": message.get("content"),
            "tool_calls": message.get("tool_calls"),
            "tool_call_id": message.get("tool_call_id"),
            "usage": message.get("usage"),
            "orchestration_instance_id": orchestration_instance_id,
        }
        for position, message in enumerate(messages)
    ]
    if dialect.of(session).writes_in_one_statement:
        params = {"rows": json_rows(rows), "taskhub": taskhub, "agent": agent, "session_key": session_key, "ttl": ttl}
        return int(session.execute(_commit_turn_statement(), params).scalar_one())
    now = dialect.of(session).clock()
    session.execute(
        dialect.of(session)
        .insert(AgentSessionRow)
        .values(
            taskhub=taskhub,
            agent=agent,
            session_key=session_key,
            message_count=0,
            turn_count=0,
            prompt_tokens=0,
            completion_tokens=0,
        )
        .on_conflict_do_nothing()
    )
    statement = dialect.of(session).insert(AgentMessageRow).on_conflict_do_nothing(index_elements=_TURN_KEY)
    added = session.scalars(statement.returning(AgentMessageRow.id), rows).all()
    if added:
        usage = [m.get("usage") or {} for m in messages]
        session.execute(
            update(AgentSessionRow)
            .where(_of_session(AgentSessionRow, taskhub, agent, session_key))
            .values(
                message_count=AgentSessionRow.message_count + len(added),
                turn_count=AgentSessionRow.turn_count + 1,
                prompt_tokens=AgentSessionRow.prompt_tokens + sum(u.get("prompt_tokens", 0) for u in usage),
                completion_tokens=AgentSessionRow.completion_tokens + sum(u.get("completion_tokens", 0) for u in usage),
                updated_at=now,
                expires_at=now + ttl if ttl is not None else None,
            )
        )
    return len(added)


_TURN_KEY = ["taskhub", "agent", "session_key", "correlation_id", "position"]
_MESSAGE_COLUMNS = ("taskhub", "agent", "session_key", "correlation_id", "position", "role", "content",
                    "tool_calls", "tool_call_id", "usage", "orchestration_instance_id")  # fmt: skip


@cache
def _commit_turn_statement() -> Select[int]:
    """`commit_turn` as one statement on PostgreSQL, built once: the new messages, then the session's
    counters created or advanced by what was added. The messages' foreign key to a session row
    created by the same statement holds: PostgreSQL checks it when the statement ends."""
    messages, sessions = agent_messages_table, agent_sessions_table
    added = insert_from_json(messages, _MESSAGE_COLUMNS, "rows", returning=("usage",), skip_conflicts_on=_TURN_KEY).cte(
        "added"
    )

    def tokens(key: str) -> Any:
        return func.coalesce(func.sum(added.c.usage[key].as_integer()), 0)

    totals = select(
        func.count().label("added"),
        tokens("prompt_tokens").label("prompt"),
        tokens("completion_tokens").label("completion"),
    ).cte("totals")
    now = func.now()
    counted = postgresql.insert(sessions).from_select(
        ["taskhub", "agent", "session_key", "message_count", "turn_count", "prompt_tokens", "completion_tokens",
         "updated_at", "expires_at"],
        select(
            bindparam("taskhub", type_=sessions.c.taskhub.type),
            bindparam("agent", type_=sessions.c.agent.type),
            bindparam("session_key", type_=sessions.c.session_key.type),
            totals.c.added, literal(1), totals.c.prompt, totals.c.completion,
            now, now + bindparam("ttl", type_=Interval()),
        ).where(totals.c.added > 0),
    )  # fmt: skip
    excluded, current = counted.excluded, sessions.c
    counted = counted.on_conflict_do_update(
        index_elements=["taskhub", "agent", "session_key"],
        set_={
            "message_count": current.message_count + excluded.message_count,
            "turn_count": current.turn_count + 1,
            "prompt_tokens": current.prompt_tokens + excluded.prompt_tokens,
            "completion_tokens": current.completion_tokens + excluded.completion_tokens,
            "updated_at": excluded.updated_at,
            "expires_at": excluded.expires_at,
        },
    )
    return select(totals.c.added).add_cte(counted.cte("counted"))


def _row(session: Session, taskhub: str, agent: str, session_key: str) -> AgentSessionRow:
    row = session.get(AgentSessionRow, (taskhub, agent, session_key))
    if row is None:
        raise SessionNotFoundError(agent, session_key, taskhub)
    return row


def _info(row: AgentSessionRow, messages: list[dict[str, Any]]) -> SessionInfo:
    return SessionInfo(
        taskhub=row.taskhub,
        agent=row.agent,
        session_key=row.session_key,
        message_count=row.message_count,
        turn_count=row.turn_count,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        created_at=row.created_at,
        updated_at=row.updated_at,
        expires_at=row.expires_at,
        messages=messages,
    )


def get(session: Session, taskhub: str, agent: str, session_key: str) -> SessionInfo:
    row = _row(session, taskhub, agent, session_key)
    return _info(row, load_messages(session, taskhub, agent, session_key))


def list_sessions(
    session: Session, taskhub: str, agent: str | None = None, limit: int = 100, offset: int = 0
) -> list[SessionInfo]:
    statement = select(AgentSessionRow).where(AgentSessionRow.taskhub == taskhub)
    if agent is not None:
        statement = statement.where(AgentSessionRow.agent == agent)
    statement = statement.order_by(AgentSessionRow.updated_at.desc()).limit(limit).offset(offset)
    return [_info(row, []) for row in session.scalars(statement)]


def reset(session: Session, taskhub: str, agent: str, session_key: str) -> None:
    """Forget the conversation but keep the session (its next turn starts afresh)."""
    row = _row(session, taskhub, agent, session_key)
    session.execute(delete(AgentMessageRow).where(_of_session(AgentMessageRow, taskhub, agent, session_key)))
    row.message_count = row.turn_count = row.prompt_tokens = row.completion_tokens = 0
    row.summary = None
    row.summary_upto = None


def delete_session(session: Session, taskhub: str, agent: str, session_key: str) -> None:
    session.delete(_row(session, taskhub, agent, session_key))


def usage_of_instance(session: Session, taskhub: str, instance_id: str) -> dict[str, int]:
    """Tokens spent by the agent turns an orchestration instance ran."""
    usages = session.scalars(
        select(AgentMessageRow.usage).where(
            AgentMessageRow.taskhub == taskhub,
            AgentMessageRow.orchestration_instance_id == instance_id,
            AgentMessageRow.usage.is_not(None),
        )
    ).all()
    totals = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    for usage in usages:
        if not usage:
            continue
        for key in totals:
            totals[key] += int(usage.get(key, 0))
    return totals


def expire(session: Session, taskhub: str) -> int:
    """Delete sessions idle past their time-to-live."""
    expired = AgentSessionRow.expires_at < dialect.of(session).clock()
    result = session.execute(delete(AgentSessionRow).where(AgentSessionRow.taskhub == taskhub, expired))
    return int(result.rowcount)  # type: ignore[attr-defined]
