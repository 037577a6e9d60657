"""Which external events an orchestration waits for, and since when: found by replaying its history.

A wait is not a history event (only its timeout timer is), so the code is replayed to find it. This
is for diagnosis, not for stepping: nothing it computes is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .context import AgentFactory
from .executor import Orchestrator, ReplayExecutor
from .history import HistoryEvent
from .tasks import ExternalEventTask, TimerTask


@dataclass(frozen=True)
class EventWait:
    name: str
    #: When the step that started waiting ran.
    since: datetime
    #: When the wait's own timeout fires, if it has one.
    timeout_at: datetime | None = None
    timeout_task_id: int | None = None


def open_event_waits(
    orchestrator: Orchestrator,
    instance_id: str,
    history: Iterable[HistoryEvent],
    *,
    max_payload_bytes: int,
    result_type_of: Callable[[str, str], Any] | None = None,
    agent_factory: AgentFactory | None = None,
) -> list[EventWait] | None:
    """The waits still open after `history`, oldest first; None if the code no longer replays it."""
    executor = ReplayExecutor(
        orchestrator,
        instance_id,
        max_payload_bytes=max_payload_bytes,
        result_type_of=result_type_of,
        agent_factory=agent_factory,
    )
    state = executor.state
    # Keyed by id() while holding the task, so an id is never reused for another wait.
    since: dict[int, tuple[ExternalEventTask[Any], datetime]] = {}
    for event in history:
        executor.replay([event])
        if executor.replay_failure is not None:
            return None
        for waiters in state.event_waiters.values():
            for waiter in waiters:
                since.setdefault(id(waiter), (waiter, state.now))
    timeouts = {id(task): timer_id for timer_id, task in state.event_timeouts.items()}
    waits = []
    for waiters in state.event_waiters.values():
        for waiter in waiters:
            if waiter.is_complete:
                continue
            timer_id = timeouts.get(id(waiter))
            timer = state.open_tasks.get(timer_id) if timer_id is not None else None
            waits.append(
                EventWait(
                    name=waiter.name,
                    since=since[id(waiter)][1],
                    timeout_at=timer.fire_at if isinstance(timer, TimerTask) else None,
                    timeout_task_id=timer_id,
                )
            )
    return sorted(waits, key=lambda wait: wait.since)
