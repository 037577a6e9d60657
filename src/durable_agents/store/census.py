"""How many instances a task hub holds in each status: one grouped count, for the metrics' scrape."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import Instance


def instances_by_status(session: Session, taskhub: str) -> dict[str, int]:
    rows = session.execute(
        select(Instance.status, func.count()).where(Instance.taskhub == taskhub).group_by(Instance.status)
    ).all()
    return {status: count for status, count in rows}
