"""What a client sees of an instance: its runtime status, input, output and failure."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from .errors import FailureDetails


class OrchestrationStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TERMINATED = "TERMINATED"
    SUSPENDED = "SUSPENDED"
    CONTINUED_AS_NEW = "CONTINUED_AS_NEW"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


#: The statuses an instance never leaves (only a restart under its id replaces it), as stored.
TERMINAL: frozenset[str] = frozenset({"COMPLETED", "FAILED", "TERMINATED"})


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


@dataclass(frozen=True)
class OrchestrationState:
    """A snapshot of one orchestration instance (the `serialized_*` fields are JSON text)."""

    instance_id: str
    name: str
    taskhub: str
    runtime_status: OrchestrationStatus
    created_at: datetime
    last_updated_at: datetime
    completed_at: datetime | None
    input: Any
    output: Any
    custom_status: Any
    failure_details: FailureDetails | None
    parent_instance_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    #: The orchestration version it was started with (None: unversioned).
    version: str | None = None

    @property
    def serialized_input(self) -> str | None:
        return _dumps(self.input)

    @property
    def serialized_output(self) -> str | None:
        return _dumps(self.output)

    @property
    def serialized_custom_status(self) -> str | None:
        return _dumps(self.custom_status)

    def to_json(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "name": self.name,
            "taskhub": self.taskhub,
            "runtime_status": self.runtime_status.value,
            "created_at": self.created_at.isoformat(),
            "last_updated_at": self.last_updated_at.isoformat(),
            "completed_at": self.completed_at.isoformat() if self.completed_at else None,
            "input": self.input,
            "output": self.output,
            "custom_status": self.custom_status,
            "failure_details": self.failure_details.to_json() if self.failure_details else None,
            "parent_instance_id": self.parent_instance_id,
            "tags": dict(self.tags),
            "version": self.version,
        }
