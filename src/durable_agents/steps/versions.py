"""The version gate: whether this worker runs a step of an instance, leaves it for another worker, or fails it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy.orm import Session

from .. import ids
from ..errors import FailureDetails, VersionMismatchError
from ..orchestrator.executor import ReplayExecutor
from ..orchestrator.history import ExecutionStarted, TaskCompleted, TaskFailed
from ..orchestrator.versions import VersioningOptions, mismatch_message, runs
from ..store import decisions, inbox
from ..store.locked import LockedInstance
from .arrivals import Arrival

Verdict = Literal["run", "reject", "fail"]


@dataclass(frozen=True)
class VersionGate:
    """A worker's version and versioning options, and the names every worker runs regardless."""

    version: str | None
    options: VersioningOptions
    unversioned: frozenset[str] = frozenset()

    def verdict(self, instance: LockedInstance) -> Verdict:
        if instance.name in self.unversioned or runs(self.options.match, self.version, instance.version):
            return "run"
        return self.options.on_mismatch

    def refusing_executor(self, instance: LockedInstance, max_payload_bytes: int) -> ReplayExecutor:
        """An executor that fails the instance at once with an error naming both versions."""
        executor = ReplayExecutor(lambda context: None, instance.instance_id, max_payload_bytes=max_payload_bytes)
        message = mismatch_message(instance.instance_id, instance.version, self.version, self.options.match)
        executor.refuse(FailureDetails.from_exception(VersionMismatchError(message)))
        return executor


def park(session: Session, instance: LockedInstance, events: list[Arrival]) -> None:
    """Leave the step for a worker that runs the instance's version: the inbox stays as it is, and what
    reached the step directly (a child's start, an activity's outcome) goes into it."""
    for row_id, execution_id, event in events:
        if row_id is not None or execution_id is None:
            continue
        if isinstance(event, (TaskCompleted, TaskFailed)):
            decisions.hold_completion(session, instance, execution_id, event)
        elif isinstance(event, ExecutionStarted):
            key = ids.start_key(execution_id)
            inbox.post(
                session, instance.taskhub, instance.instance_id, event, execution_id=execution_id, dedupe_key=key
            )
