"""The step that rewinds a failed instance: find the failed tasks, record the rewind, run them again."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from ..errors import NotRegisteredError
from ..orchestrator.executor import ReplayExecutor
from ..orchestrator.history import ExecutionRewound, HistoryEvent, StepStarted, TaskScheduled
from ..orchestrator.tasks import ActivityTask
from ..registry import Registry
from ..store import rewinds
from ..store.locked import LockedInstance
from ..store.step_reads import read_history
from .replay import fresh_executor


@dataclass
class Rewound:
    """The rewound execution: its executor (replayed through the rewind, the failures taken back), the
    events that open the step, the activities to run again and the children rewound."""

    executor: ReplayExecutor
    opening: list[HistoryEvent]
    rerun: list[TaskScheduled] = field(default_factory=list)
    children: list[str] = field(default_factory=list)


def rewind(
    session: Session,
    instance: LockedInstance,
    registry: Registry,
    max_payload_bytes: int,
    request: ExecutionRewound,
    now: datetime,
) -> Rewound:
    """Replay the failed execution to learn which activities and sub-orchestrations failed it, then replay it
    again without those failures: the code waits on them once more. Failed children are rewound too.
    An execution that failed in its own code (or on a divergence) has no such task: replayed on the fixed
    code, it goes on from where it failed, or ends."""
    failed = fresh_executor(session, instance, registry, max_payload_bytes).state.failed_tasks
    history = list(read_history(session, instance.taskhub, instance.instance_id))
    try:
        executor = _executor(instance, registry, max_payload_bytes)
    except NotRegisteredError:
        executor = fresh_executor(session, instance, registry, max_payload_bytes)  # fails with the registry's word
        return Rewound(executor, [StepStarted(timestamp=now), ExecutionRewound(reason=request.reason)])
    scheduled = {event.task_id: event for event in history if isinstance(event, TaskScheduled)}
    rerun: list[TaskScheduled] = []
    children: list[str] = []
    again: list[int] = []  # a child that cannot be rewound (purged meanwhile) keeps its failure
    for task_id, task in sorted(failed.items()):
        if isinstance(task, ActivityTask):
            spec = registry.activities.get(task.name)
            if spec is not None and spec.in_step:  # it ran inside its step, which is not run again
                continue
            rerun.append(scheduled[task_id])
        elif rewinds.rewind(session, instance.taskhub, task.instance_id, request.reason, strict=False):
            children.append(task.instance_id)
        else:
            continue
        again.append(task_id)
    opening: list[HistoryEvent] = [
        StepStarted(timestamp=now),
        ExecutionRewound(reason=request.reason, task_ids=tuple(again)),
    ]
    executor.replay([*history, *opening])
    return Rewound(executor, opening, rerun, children)


def _executor(instance: LockedInstance, registry: Registry, max_payload_bytes: int) -> ReplayExecutor:
    return ReplayExecutor(
        registry.orchestration(instance.name).fn,
        instance.instance_id,
        max_payload_bytes=max_payload_bytes,
        result_type_of=registry.result_type_of,
        agent_factory=registry.agent_factory,
    )
