"""What `DurableClient.explain` answers: a reason code, a sentence for people, and what the instance waits for."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from .state import OrchestrationStatus
from .store.workers import WorkerInfo


class Reason(StrEnum):
    """Why an instance is where it is; `NO_WORKER` is the one that needs someone to act."""

    FINISHED = "finished"
    SUSPENDED = "suspended"
    SCHEDULED = "scheduled"
    NO_WORKER = "no_worker"
    QUEUED = "queued"
    RUNNING = "running"
    WAITING_FOR_SUB_ORCHESTRATION = "waiting_for_sub_orchestration"
    WAITING_FOR_AGENT = "waiting_for_agent"
    WAITING_FOR_ENTITY = "waiting_for_entity"
    WAITING_FOR_EVENT = "waiting_for_event"
    WAITING_FOR_TIMER = "waiting_for_timer"
    #: Waits for something only its code can tell (the explaining client does not have the code).
    WAITING = "waiting"


PendingKind = Literal["step", "activity", "agent", "entity", "event", "timer", "sub_orchestration", "start"]


@dataclass(frozen=True)
class Pending:
    """One thing an instance waits for."""

    kind: PendingKind
    #: The orchestration (step, sub-orchestration), activity, agent or event name; a timer's purpose.
    name: str
    since: datetime | None = None
    task_id: int | None = None
    #: When a timer fires, or an event wait times out.
    fires_at: datetime | None = None
    #: The sub-orchestration's instance, or the agent's turn (or session, for turns from before turns were instances).
    instance_id: str | None = None
    #: An activity's work item status (pending, running, lease_expired) or a sub-orchestration's runtime status.
    status: str | None = None
    #: Node names of the live workers that run it (steps, activities, agents).
    served_by: tuple[str, ...] = ()

    @property
    def needs_worker(self) -> bool:
        return self.kind in ("step", "activity", "agent")

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "since": _iso(self.since),
            "task_id": self.task_id,
            "fires_at": _iso(self.fires_at),
            "instance_id": self.instance_id,
            "status": self.status,
            "served_by": list(self.served_by),
        }


@dataclass(frozen=True)
class Explanation:
    """Why instance `instance_id` is not progressing (or that it is), in a code and in words."""

    instance_id: str
    name: str
    status: OrchestrationStatus
    reason: Reason
    message: str
    pending: tuple[Pending, ...] = ()
    #: Further problems worth knowing, e.g. no live worker would run the step an awaited event wakes.
    notes: tuple[str, ...] = ()
    #: The explanation of the sub-orchestration it waits for, when that is the reason.
    child: Explanation | None = None
    workers: tuple[WorkerInfo, ...] = field(default=(), repr=False)

    @property
    def needs_attention(self) -> bool:
        """True when nothing will happen until someone acts: no live worker serves what it needs."""
        return self.reason == Reason.NO_WORKER or (self.child is not None and self.child.needs_attention)

    def to_json(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "name": self.name,
            "status": self.status.value,
            "reason": self.reason.value,
            "message": self.message,
            "needs_attention": self.needs_attention,
            "pending": [p.to_json() for p in self.pending],
            "notes": list(self.notes),
            "child": self.child.to_json() if self.child is not None else None,
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
