"""The instance row a step holds locked: read once with Core, its changes written as one UPDATE."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..models import instances_table
from . import inbox
from .writes import StepWrites


class LockedInstance:
    """The instance row a step holds locked, read with Core; what the step changes goes out as one
    UPDATE (the ORM's identity map and flush cost more per step than the rest of the step's SQL)."""

    taskhub: str
    instance_id: str
    name: str
    execution_id: str
    status: str
    input: Any
    output: Any
    custom_status: Any
    failure: Any
    parent_instance_id: str | None
    version: str | None
    parent_execution_id: str | None
    parent_task_id: int | None
    trace_parent: str | None
    history_length: int
    completed_at: datetime | None
    updated_at: datetime
    _changes: dict[str, Any]
    _announce: bool

    def __init__(self, values: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_changes", {})
        object.__setattr__(self, "_announce", False)
        for column in instances_table.c:
            object.__setattr__(self, column.name, values[column.name])

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        self._changes[name] = value

    def announce(self) -> None:
        """Tell waiting clients (LISTEN) that the instance changed, once its changes are saved and committed."""
        object.__setattr__(self, "_announce", True)

    def save(self, writes: StepWrites) -> None:
        """Write what changed since the row was read, if anything did."""
        where = {"taskhub": self.taskhub, "instance_id": self.instance_id}
        notify = inbox.notify_payload(self.taskhub, self.instance_id, self.status) if self._announce else None
        writes.update(instances_table, where, dict(self._changes), notify=notify)
        self._changes.clear()
        object.__setattr__(self, "_announce", False)
