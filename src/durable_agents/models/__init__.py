"""SQLAlchemy tables: instances, their history, the inbox of new events, work items and timers.

Every row carries its task hub. Payloads are JSONB (JSON text on SQLite). Rows of one instance are deleted with it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ..ids import activity_idempotency_key
from .types import Json, RowId, UtcDateTime

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Payload = Any


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {Payload: Json, datetime: UtcDateTime()}  # noqa: RUF012


def _instance_fk(table: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["taskhub", "instance_id"],
        ["da_instances.taskhub", "da_instances.instance_id"],
        ondelete="CASCADE",
        name=f"fk_{table}_instance",
    )


class Instance(Base):
    """One orchestration instance: its identity, status, input and output."""

    __tablename__ = "da_instances"

    taskhub: Mapped[str] = mapped_column(String(64), primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    execution_id: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(20))
    input: Mapped[Payload | None] = mapped_column(Json, nullable=True)
    output: Mapped[Payload | None] = mapped_column(Json, nullable=True)
    custom_status: Mapped[Payload | None] = mapped_column(Json, nullable=True)
    failure: Mapped[Payload | None] = mapped_column(Json, nullable=True)
    #: Labels to find the instance by (None: no tags); filtered by containment, indexed on PostgreSQL.
    tags: Mapped[Payload | None] = mapped_column(Json, nullable=True)
    #: The orchestration version it was started with (None: unversioned); workers match it (versioning).
    version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    parent_instance_id: Mapped[str | None] = mapped_column(String(256), nullable=True)
    parent_execution_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    parent_task_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: Number of history rows of the current execution; lets a worker trust its cached replay.
    history_length: Mapped[int] = mapped_column(Integer, default=0)
    scheduled_start_at: Mapped[datetime | None] = mapped_column(nullable=True)
    #: When the sweeper last sent the instance a wake-up for events waiting in its inbox.
    woken_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    completed_at: Mapped[datetime | None] = mapped_column(nullable=True)

    __table_args__ = (
        Index("ix_da_instances_status", "taskhub", "status", "created_at"),
        Index("ix_da_instances_name", "taskhub", "name", "created_at"),
        Index("ix_da_instances_created", "taskhub", "created_at"),
        Index("ix_da_instances_parent", "taskhub", "parent_instance_id"),
        Index(
            "ix_da_instances_tags",
            "tags",
            postgresql_using="gin",
            postgresql_ops={"tags": "jsonb_path_ops"},
        ),  # created by migration 0006 on PostgreSQL only
    )


class HistoryRow(Base):
    """One event of an instance's current execution, append-only, numbered from 0."""

    __tablename__ = "da_history"

    taskhub: Mapped[str] = mapped_column(String(64), primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    execution_id: Mapped[str] = mapped_column(String(32))
    event: Mapped[Payload] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (_instance_fk("da_history"),)


class InboxRow(Base):
    """A new event for an instance not yet consumed by a step: completions, timers, raised events.

    `dedupe_key` makes every completion count once however often it is delivered.
    """

    __tablename__ = "da_inbox"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    taskhub: Mapped[str] = mapped_column(String(64))
    instance_id: Mapped[str] = mapped_column(String(256))
    execution_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    event: Mapped[Payload] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        _instance_fk("da_inbox"),
        UniqueConstraint("taskhub", "instance_id", "dedupe_key", name="uq_da_inbox_dedupe"),
        Index("ix_da_inbox_instance", "taskhub", "instance_id", "id"),
        Index("ix_da_inbox_created", "taskhub", "created_at"),
    )


class WorkItem(Base):
    """An activity to run: the outbox row its Celery message points at, leased while it runs."""

    __tablename__ = "da_work_items"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    taskhub: Mapped[str] = mapped_column(String(64))
    instance_id: Mapped[str] = mapped_column(String(256))
    execution_id: Mapped[str] = mapped_column(String(32))
    task_id: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(256))
    input: Mapped[Payload | None] = mapped_column(Json, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    dispatched_at: Mapped[datetime] = mapped_column(server_default=func.now())
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        _instance_fk("da_work_items"),
        UniqueConstraint("taskhub", "instance_id", "execution_id", "task_id", name="uq_da_work_items_task"),
        Index("ix_da_work_items_sweep", "taskhub", "status", "dispatched_at"),
        Index("ix_da_work_items_lease", "taskhub", "lease_expires_at"),
    )

    @property
    def idempotency_key(self) -> str:
        return activity_idempotency_key(self.taskhub, self.instance_id, self.execution_id, self.task_id)


class Timer(Base):
    """A durable timer; the sweeper turns it into an inbox event when it is due."""

    __tablename__ = "da_timers"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    taskhub: Mapped[str] = mapped_column(String(64))
    instance_id: Mapped[str] = mapped_column(String(256))
    execution_id: Mapped[str] = mapped_column(String(32))
    task_id: Mapped[int] = mapped_column(Integer)
    fire_at: Mapped[datetime] = mapped_column()
    purpose: Mapped[str] = mapped_column(String(16))

    __table_args__ = (
        _instance_fk("da_timers"),
        Index("ix_da_timers_due", "taskhub", "fire_at"),
    )


class AgentSessionRow(Base):
    """A durable conversation of one agent, keyed (task hub, agent, session key)."""

    __tablename__ = "da_agent_sessions"

    taskhub: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent: Mapped[str] = mapped_column(String(128), primary_key=True)
    session_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    message_count: Mapped[int] = mapped_column(Integer, default=0)
    turn_count: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    #: Idle sessions past this moment are deleted by the sweeper (agents with a session_ttl).
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    #: The agent's own summary of the messages up to `summary_upto` (agents with a Summarize policy).
    summary: Mapped[str | None] = mapped_column(nullable=True)
    summary_upto: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (Index("ix_da_agent_sessions_expiry", "taskhub", "expires_at"),)


class AgentMessageRow(Base):
    """One message of a session: a request, a response, a tool call's result."""

    __tablename__ = "da_agent_messages"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    taskhub: Mapped[str] = mapped_column(String(64))
    agent: Mapped[str] = mapped_column(String(128))
    session_key: Mapped[str] = mapped_column(String(128))
    correlation_id: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str | None] = mapped_column(nullable=True)
    tool_calls: Mapped[Payload | None] = mapped_column(Json, nullable=True)
    tool_call_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    usage: Mapped[Payload | None] = mapped_column(Json, nullable=True)
    orchestration_instance_id: Mapped[str | None] = mapped_column(String(256), nullable=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        ForeignKeyConstraint(
            ["taskhub", "agent", "session_key"],
            ["da_agent_sessions.taskhub", "da_agent_sessions.agent", "da_agent_sessions.session_key"],
            ondelete="CASCADE",
            name="fk_da_agent_messages_session",
        ),
        UniqueConstraint(
            "taskhub", "agent", "session_key", "correlation_id", "position", name="uq_da_agent_messages_turn"
        ),
        Index("ix_da_agent_messages_session", "taskhub", "agent", "session_key", "id"),
        Index("ix_da_agent_messages_instance", "taskhub", "orchestration_instance_id"),
    )


class WorkerRow(Base):
    """A running worker process: what it serves, and its heartbeat (live while `expires_at` is ahead)."""

    __tablename__ = "da_workers"

    taskhub: Mapped[str] = mapped_column(String(64), primary_key=True)
    worker_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    node_name: Mapped[str] = mapped_column(String(256))
    host: Mapped[str] = mapped_column(String(256))
    pid: Mapped[int] = mapped_column(Integer)
    version: Mapped[str] = mapped_column(String(32))
    #: The Celery queues it consumes, and the names it serves on them.
    queues: Mapped[Payload] = mapped_column(Json)
    orchestrations: Mapped[Payload] = mapped_column(Json)
    activities: Mapped[Payload] = mapped_column(Json)
    agents: Mapped[Payload] = mapped_column(Json)
    runs_sweeper: Mapped[bool] = mapped_column(Boolean)
    #: Its worker slots (Celery's concurrency): how many tasks it runs at once.
    concurrency: Mapped[int] = mapped_column(Integer, server_default="1")
    #: The app's orchestration version (`DurableApp(version=)`) and its versioning match strategy.
    code_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    version_match: Mapped[str | None] = mapped_column(String(20), nullable=True)
    started_at: Mapped[datetime] = mapped_column()
    heartbeat_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()

    __table_args__ = (Index("ix_da_workers_expiry", "taskhub", "expires_at"),)


class LeaseHolderRow(Base):
    """A process that holds (or may hold) leases on work items, and its heartbeat: once it stops, its
    leases are freed, in seconds, whatever their length."""

    __tablename__ = "da_lease_holders"

    taskhub: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: The prefix of every lease owner of the process: host, pid and a token of this process's life.
    holder: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(256))
    pid: Mapped[int] = mapped_column(Integer)
    #: The worker whose pool forked it (a prefork child), or its own pid: a stopping worker releases both.
    parent_pid: Mapped[int] = mapped_column(Integer)
    heartbeat_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    #: Set when its worker stopped and handed its leases back; heartbeats no longer revive it.
    released_at: Mapped[datetime | None] = mapped_column(nullable=True)

    __table_args__ = (Index("ix_da_lease_holders_expiry", "taskhub", "expires_at"),)


class SignOutRow(Base):
    """A dashboard session cookie signed out before it expired: refused until then, then forgotten."""

    __tablename__ = "da_signouts"

    taskhub: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: SHA-256 of the cookie's value, hex: the row is no use to anyone who reads it.
    token_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column()

    __table_args__ = (Index("ix_da_signouts_expiry", "taskhub", "expires_at"),)


class ToolApprovalRow(Base):
    """A tool call waiting for a person (or decided by one, or by its timeout): the turn waits on an event."""

    __tablename__ = "da_tool_approvals"

    taskhub: Mapped[str] = mapped_column(String(64), primary_key=True)
    approval_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: The turn that waits (`@turn:<correlation id>`): purging it purges its requests.
    instance_id: Mapped[str] = mapped_column(String(256))
    agent: Mapped[str] = mapped_column(String(128))
    session_key: Mapped[str] = mapped_column(String(128))
    correlation_id: Mapped[str] = mapped_column(String(64))
    tool_call_id: Mapped[str] = mapped_column(String(128))
    tool: Mapped[str] = mapped_column(String(256))
    arguments: Mapped[Payload] = mapped_column(Json)
    #: The orchestration whose `agent.run` started the turn (None for a client's run).
    orchestration_instance_id: Mapped[str | None] = mapped_column(String(256), nullable=True)
    #: pending, approved or rejected.
    status: Mapped[str] = mapped_column(String(16))
    requested_at: Mapped[datetime] = mapped_column()
    #: When the agent's timeout decides instead of a person (None: it waits as long as it takes).
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)
    timed_out: Mapped[bool] = mapped_column(Boolean, server_default="0")
    #: The arguments the tool runs with when a person edited them on approval.
    approved_arguments: Mapped[Payload | None] = mapped_column(Json, nullable=True)
    reason: Mapped[str | None] = mapped_column(nullable=True)

    __table_args__ = (
        _instance_fk("da_tool_approvals"),
        Index("ix_da_tool_approvals_status", "taskhub", "status", "requested_at"),
    )


class EntityRow(Base):
    """A durable entity's state, beside the instance whose inbox holds its operations (see `store/entities`)."""

    __tablename__ = "da_entities"

    taskhub: Mapped[str] = mapped_column(String(64), primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    key: Mapped[str] = mapped_column(String(256))
    #: None until an operation stores one (a new entity, or one whose state was set to null).
    state: Mapped[Payload | None] = mapped_column(Json, nullable=True)
    #: The critical section that holds the entity, and the orchestration that holds it.
    locked_by: Mapped[str | None] = mapped_column(String(600), nullable=True)
    lock_holder: Mapped[str | None] = mapped_column(String(256), nullable=True)
    #: Messages from other callers held while the entity is locked, in arrival order.
    queued: Mapped[Payload] = mapped_column(Json)
    operation_count: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()

    __table_args__ = (
        _instance_fk("da_entities"),
        Index("ix_da_entities_name", "taskhub", "name", "key"),
        Index("ix_da_entities_holder", "taskhub", "lock_holder"),
    )


class EntityOperationRow(Base):
    """One of the last operations an entity applied (a few per entity are kept), for the dashboard and CLI."""

    __tablename__ = "da_entity_operations"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    taskhub: Mapped[str] = mapped_column(String(64))
    instance_id: Mapped[str] = mapped_column(String(256))
    #: "call", "signal", "lock" or "unlock".
    kind: Mapped[str] = mapped_column(String(16))
    operation: Mapped[str] = mapped_column(String(256))
    caller: Mapped[str | None] = mapped_column(String(256), nullable=True)
    input: Mapped[Payload | None] = mapped_column(Json, nullable=True)
    result: Mapped[Payload | None] = mapped_column(Json, nullable=True)
    failure: Mapped[Payload | None] = mapped_column(Json, nullable=True)
    applied_at: Mapped[datetime] = mapped_column()

    __table_args__ = (
        _instance_fk("da_entity_operations"),
        Index("ix_da_entity_operations_entity", "taskhub", "instance_id", "id"),
    )


class ScheduleRow(Base):
    """A recurring schedule: what it starts, when (cron or interval), and where its firing has got to."""

    __tablename__ = "da_schedules"

    taskhub: Mapped[str] = mapped_column(String(64), primary_key=True)
    schedule_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    orchestration: Mapped[str] = mapped_column(String(256))
    input: Mapped[Payload | None] = mapped_column(Json, nullable=True)
    #: Exactly one of `cron` (5 fields, read in `timezone`) and `every_seconds` is set.
    cron: Mapped[str | None] = mapped_column(String(256), nullable=True)
    every_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    timezone: Mapped[str] = mapped_column(String(64))
    start_at: Mapped[datetime | None] = mapped_column(nullable=True)
    end_at: Mapped[datetime | None] = mapped_column(nullable=True)
    overlap: Mapped[str] = mapped_column(String(16))
    catchup_window_seconds: Mapped[float] = mapped_column(Float)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    #: The next fire time to act on (None: the schedule has ended); due once the clock passes it.
    next_fire_at: Mapped[datetime | None] = mapped_column(nullable=True)
    #: A fire time waiting for the running run to end (overlap "buffer_one").
    buffered_fire_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_fire_at: Mapped[datetime | None] = mapped_column(nullable=True)
    #: The latest run started: the overlap policies ask whether it still runs.
    last_instance_id: Mapped[str | None] = mapped_column(String(256), nullable=True)
    fired_count: Mapped[int] = mapped_column(BigInteger, default=0)
    skipped_count: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (Index("ix_da_schedules_due", "taskhub", "next_fire_at"),)


# The tables themselves, for Core statements where a step's cost matters: a statement on a mapped
# class goes through the ORM's bulk and synchronisation machinery even when no object is involved.
instances_table = cast(Table, Instance.__table__)
history_table = cast(Table, HistoryRow.__table__)
inbox_table = cast(Table, InboxRow.__table__)
work_items_table = cast(Table, WorkItem.__table__)
timers_table = cast(Table, Timer.__table__)
agent_sessions_table = cast(Table, AgentSessionRow.__table__)
agent_messages_table = cast(Table, AgentMessageRow.__table__)
entities_table = cast(Table, EntityRow.__table__)
entity_operations_table = cast(Table, EntityOperationRow.__table__)
schedules_table = cast(Table, ScheduleRow.__table__)

__all__ = [
    "AgentMessageRow",
    "AgentSessionRow",
    "Base",
    "EntityOperationRow",
    "EntityRow",
    "HistoryRow",
    "InboxRow",
    "Instance",
    "ScheduleRow",
    "SignOutRow",
    "ToolApprovalRow",
    "Timer",
    "WorkItem",
    "WorkerRow",
    "agent_messages_table",
    "agent_sessions_table",
    "entities_table",
    "entity_operations_table",
    "history_table",
    "inbox_table",
    "instances_table",
    "schedules_table",
    "timers_table",
    "work_items_table",
]
