"""Lease holders: the processes that hold leases, their heartbeats, and freeing what a dead one held."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from ..models import LeaseHolderRow, WorkItem
from . import dialect

#: A released or dead holder's row is kept this long, to say who held what, then forgotten.
FORGET_AFTER = timedelta(hours=1)


def register(session: Session, taskhub: str, holder: str, host: str, pid: int, parent_pid: int, timeout: float) -> None:
    """The process's row, live for `timeout` seconds (a heartbeat extends it)."""
    now = dialect.of(session).current_time(session)
    values = {"host": host, "pid": pid, "parent_pid": parent_pid, "heartbeat_at": now, "released_at": None}
    values["expires_at"] = now + timedelta(seconds=timeout)
    statement = dialect.of(session).insert(LeaseHolderRow).values(taskhub=taskhub, holder=holder, **values)
    session.execute(statement.on_conflict_do_update(index_elements=["taskhub", "holder"], set_=values))


def heartbeat(session: Session, taskhub: str, holder: str, timeout: float) -> bool:
    """Keep the holder live; False if its row is gone or was released (it must not revive)."""
    clock = dialect.of(session).clock()
    result = session.execute(
        update(LeaseHolderRow)
        .where(LeaseHolderRow.taskhub == taskhub, LeaseHolderRow.holder == holder, LeaseHolderRow.released_at.is_(None))
        .values(heartbeat_at=clock, expires_at=clock + timedelta(seconds=timeout))
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def release(session: Session, taskhub: str, host: str, pid: int) -> int:
    """Hand back the leases of a stopping worker: its own process and the pool children it forked.
    The next sweep frees them; returns how many holders were released."""
    clock = dialect.of(session).clock()
    result = session.execute(
        update(LeaseHolderRow)
        .where(
            LeaseHolderRow.taskhub == taskhub,
            LeaseHolderRow.host == host,
            or_(LeaseHolderRow.pid == pid, LeaseHolderRow.parent_pid == pid),
        )
        .values(released_at=clock, expires_at=clock)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def free_dead(session: Session, taskhub: str, now: datetime) -> list[tuple[int, str]]:
    """Free the leases of holders whose heartbeat stopped (or that were released): their running work
    items become claimable at once. Returns them, as (work item id, activity name), to dispatch again."""
    dead = session.scalars(
        select(LeaseHolderRow.holder).where(LeaseHolderRow.taskhub == taskhub, LeaseHolderRow.expires_at < now)
    ).all()
    if not dead:
        return []
    owned_by_dead = or_(*(WorkItem.lease_owner.startswith(f"{holder}:", autoescape=True) for holder in dead))
    freed = session.execute(
        update(WorkItem)
        .where(WorkItem.taskhub == taskhub, WorkItem.status == "running", owned_by_dead)
        .values(lease_expires_at=now, dispatched_at=now)
        .returning(WorkItem.id, WorkItem.name)
    ).all()
    # Their leases are free now; the rows stay a while to say who held what.
    session.execute(
        update(LeaseHolderRow)
        .where(LeaseHolderRow.taskhub == taskhub, LeaseHolderRow.holder.in_(dead))
        .values(expires_at=now + FORGET_AFTER, released_at=now)
    )
    session.execute(
        delete(LeaseHolderRow).where(
            LeaseHolderRow.taskhub == taskhub,
            LeaseHolderRow.released_at < now - FORGET_AFTER,
        )
    )
    return [(item_id, name) for item_id, name in freed]


def silent_processes(session: Session, taskhub: str, host: str, silent_for: float) -> list[tuple[int, int, datetime]]:
    """The processes on `host` whose latest lease-holder heartbeat is older than `silent_for` seconds, as
    (pid, parent pid, last heartbeat): dead, or alive and hung. A process that re-registered (a new
    holder under the same pid) counts by its newest heartbeat."""
    now = dialect.of(session).current_time(session)
    last = func.max(LeaseHolderRow.heartbeat_at)
    rows = session.execute(
        select(LeaseHolderRow.pid, LeaseHolderRow.parent_pid, last)
        .where(LeaseHolderRow.taskhub == taskhub, LeaseHolderRow.host == host)
        .group_by(LeaseHolderRow.pid, LeaseHolderRow.parent_pid)
        .having(last < now - timedelta(seconds=silent_for))
    ).all()
    return [(pid, parent_pid, beat) for pid, parent_pid, beat in rows]
