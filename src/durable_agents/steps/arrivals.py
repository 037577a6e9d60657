"""Ordering a step's events: which it applies now, which wait (suspended), which are stale."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..orchestrator.history import ExecutionResumed, ExecutionStarted, ExecutionSuspended, HistoryEvent

#: An event for the step: the inbox row it came from (None for an eager completion) and its execution.
Arrival = tuple[int | None, str | None, HistoryEvent]


@dataclass
class InboxSplit:
    batch: list[HistoryEvent] = field(default_factory=list)  # events this step applies, in order
    consumed: list[int] = field(default_factory=list)  # inbox rows to delete
    kept: list[Arrival] = field(default_factory=list)  # events left for later (arrived while suspended)
    suspended: bool = False  # the suspension state once the batch is applied


def sort_arrivals(execution_id: str, suspended: bool, events: list[Arrival]) -> InboxSplit:
    """Split the events of an instance in execution `execution_id` (`suspended` or not before them)."""
    split = InboxSplit(suspended=suspended)
    for arrival in events:
        row_id, arrived_for, event = arrival
        consumed = [row_id] if row_id is not None else []
        if arrived_for is not None and arrived_for != execution_id:
            split.consumed += consumed  # a late completion for an execution that has ended
            continue
        if isinstance(event, (ExecutionSuspended, ExecutionResumed)):
            split.suspended = isinstance(event, ExecutionSuspended)
        elif split.suspended:
            split.kept.append(arrival)
            continue
        if isinstance(event, ExecutionStarted):
            split.batch.insert(0, event)
        else:
            split.batch.append(event)
        split.consumed += consumed
    return split
