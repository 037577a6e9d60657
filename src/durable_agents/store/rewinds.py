"""Rewinding a failed instance and restarting a finished one: what the store checks and writes."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ..errors import InvalidInstanceStateError
from ..models import Instance
from ..orchestrator.history import ExecutionRewound
from ..state import TERMINAL
from . import inbox
from .instances import require


def rewind(session: Session, taskhub: str, instance_id: str, reason: str | None, *, strict: bool = True) -> bool:
    """Make a FAILED instance RUNNING again with an ExecutionRewound in its inbox; its next step (on a worker,
    which has the code) finds the failed tasks and runs them again. With `strict`, any other status is
    refused with InvalidInstanceStateError; without, it is left alone and False returned (a child that did
    not fail)."""
    row = session.get(Instance, (taskhub, instance_id), with_for_update=True)
    if row is None:
        if strict:
            require(session, taskhub, instance_id)  # raises InstanceNotFoundError
        return False  # a child purged meanwhile: the parent's task stays pending, which explain shows
    if row.status != "FAILED":
        if not strict:
            return False
        raise InvalidInstanceStateError(
            f"instance {instance_id} is {row.status}; only a FAILED instance can be rewound"
        )
    row.status = "RUNNING"
    row.failure = None
    row.output = None
    row.completed_at = None
    session.flush()
    inbox.post(session, taskhub, instance_id, ExecutionRewound(reason=reason))
    inbox.notify(session, taskhub, instance_id)
    return True


def restartable(session: Session, taskhub: str, instance_id: str) -> dict[str, Any]:
    """What a restart starts again: the finished instance's name, original input, tags and version."""
    row = require(session, taskhub, instance_id)
    if row.status not in TERMINAL:
        raise InvalidInstanceStateError(
            f"instance {instance_id} is {row.status}; only a finished (COMPLETED, FAILED or TERMINATED) instance "
            "can be restarted"
        )
    return {"name": row.name, "input": row.input, "tags": row.tags, "version": row.version}
