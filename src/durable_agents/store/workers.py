"""The worker registry: each worker's row, its heartbeat, and who is live in a task hub."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ..models import WorkerRow
from . import dialect

#: A dead worker's row is kept this long after its last heartbeat expired, to say who served
#: a task hub before, then forgotten.
FORGET_AFTER = timedelta(hours=1)


@dataclass(frozen=True)
class WorkerRecord:
    """What a worker says about itself when it registers."""

    worker_id: str
    node_name: str
    host: str
    pid: int
    version: str
    #: The Celery queues it consumes.
    queues: tuple[str, ...]
    #: The names it runs: registered in its app, on a queue it consumes.
    orchestrations: tuple[str, ...]
    activities: tuple[str, ...]
    agents: tuple[str, ...]
    runs_sweeper: bool
    #: Its worker slots: how many tasks it runs at once.
    concurrency: int
    #: The app's orchestration version (None: unversioned) and its versioning match strategy.
    code_version: str | None
    version_match: str


@dataclass(frozen=True)
class WorkerInfo(WorkerRecord):
    """A worker of a task hub as the store knows it: its record, and whether it is live."""

    taskhub: str
    started_at: datetime
    last_heartbeat_at: datetime
    #: Without a heartbeat before this moment, the worker counts as gone.
    expires_at: datetime
    live: bool

    def to_json(self) -> dict[str, object]:
        return {
            "worker_id": self.worker_id,
            "taskhub": self.taskhub,
            "node_name": self.node_name,
            "host": self.host,
            "pid": self.pid,
            "version": self.version,
            "queues": list(self.queues),
            "orchestrations": list(self.orchestrations),
            "activities": list(self.activities),
            "agents": list(self.agents),
            "runs_sweeper": self.runs_sweeper,
            "concurrency": self.concurrency,
            "code_version": self.code_version,
            "version_match": self.version_match,
            "started_at": self.started_at.isoformat(),
            "last_heartbeat_at": self.last_heartbeat_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "live": self.live,
        }


def register(session: Session, taskhub: str, record: WorkerRecord, timeout: float) -> None:
    """Insert the worker's row (or refresh it, if it registers again under the same id)."""
    now = dialect.of(session).current_time(session)
    values = {
        "node_name": record.node_name,
        "host": record.host,
        "pid": record.pid,
        "version": record.version,
        "queues": list(record.queues),
        "orchestrations": list(record.orchestrations),
        "activities": list(record.activities),
        "agents": list(record.agents),
        "runs_sweeper": record.runs_sweeper,
        "concurrency": record.concurrency,
        "code_version": record.code_version,
        "version_match": record.version_match,
        "heartbeat_at": now,
        "expires_at": now + timedelta(seconds=timeout),
    }
    statement = (
        dialect.of(session)
        .insert(WorkerRow)
        .values(taskhub=taskhub, worker_id=record.worker_id, started_at=now, **values)
    )
    session.execute(statement.on_conflict_do_update(index_elements=["taskhub", "worker_id"], set_=values))


def heartbeat(session: Session, taskhub: str, record: WorkerRecord, timeout: float) -> None:
    """Push the worker's expiry forward; a row forgotten while the worker was paused is written again."""
    now = dialect.of(session).current_time(session)
    result = session.execute(
        update(WorkerRow)
        .where(WorkerRow.taskhub == taskhub, WorkerRow.worker_id == record.worker_id)
        .values(heartbeat_at=now, expires_at=now + timedelta(seconds=timeout))
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        register(session, taskhub, record, timeout)


def deregister(session: Session, taskhub: str, worker_id: str) -> None:
    session.execute(delete(WorkerRow).where(WorkerRow.taskhub == taskhub, WorkerRow.worker_id == worker_id))


def forget_dead(session: Session, taskhub: str) -> int:
    """Delete the rows of workers whose heartbeats stopped more than FORGET_AFTER ago."""
    cutoff = dialect.of(session).current_time(session) - FORGET_AFTER
    result = session.execute(delete(WorkerRow).where(WorkerRow.taskhub == taskhub, WorkerRow.expires_at < cutoff))
    return int(result.rowcount)  # type: ignore[attr-defined]


def listing(session: Session, taskhub: str, *, include_dead: bool = False) -> list[WorkerInfo]:
    """The task hub's workers, live ones first, each group by node name."""
    now = dialect.of(session).current_time(session)
    statement = select(WorkerRow).where(WorkerRow.taskhub == taskhub)
    if not include_dead:
        statement = statement.where(WorkerRow.expires_at > now)
    rows = session.scalars(statement).all()
    workers = [_info(row, now) for row in rows]
    return sorted(workers, key=lambda w: (not w.live, w.node_name, w.worker_id))


def slots_by_queue(session: Session, taskhub: str) -> dict[str, int]:
    """Worker slots of the task hub's live workers, summed per queue they consume."""
    rows = session.execute(
        select(WorkerRow.queues, WorkerRow.concurrency).where(
            WorkerRow.taskhub == taskhub, WorkerRow.expires_at > dialect.of(session).clock()
        )
    ).all()
    slots: dict[str, int] = {}
    for queues, concurrency in rows:
        for queue in queues:
            slots[queue] = slots.get(queue, 0) + concurrency
    return slots


def live_versions(session: Session, taskhub: str) -> list[tuple[str | None, str, tuple[str, ...]]]:
    """Each live worker's code version, versioning match strategy and queues."""
    rows = session.execute(
        select(WorkerRow.code_version, WorkerRow.version_match, WorkerRow.queues).where(
            WorkerRow.taskhub == taskhub, WorkerRow.expires_at > dialect.of(session).clock()
        )
    ).all()
    return [(version, match or "none", tuple(queues)) for version, match, queues in rows]


def _info(row: WorkerRow, now: datetime) -> WorkerInfo:
    return WorkerInfo(
        worker_id=row.worker_id,
        taskhub=row.taskhub,
        node_name=row.node_name,
        host=row.host,
        pid=row.pid,
        version=row.version,
        queues=tuple(row.queues),
        orchestrations=tuple(row.orchestrations),
        activities=tuple(row.activities),
        agents=tuple(row.agents),
        runs_sweeper=row.runs_sweeper,
        concurrency=row.concurrency,
        code_version=row.code_version,
        version_match=row.version_match or "none",
        started_at=row.started_at,
        last_heartbeat_at=row.heartbeat_at,
        expires_at=row.expires_at,
        live=row.expires_at > now,
    )
