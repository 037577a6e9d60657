"""What a step hands back: the messages to publish after commit, and what the driver keeps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..models import WorkItem
from ..orchestrator.executor import ReplayExecutor
from ..store.decisions import Delivery, NewChild, NewWork


@dataclass
class Dispatch:
    """Messages to publish once the transaction that decided them has committed."""

    #: (work item id, activity name): the name picks the queue.
    activities: list[tuple[int, str]] = field(default_factory=list)
    #: When set, `activities` go out as one chord whose callback wakes this instance once.
    chord_instance: str | None = None
    steps: list[str] = field(default_factory=list)
    #: The step's only activity, already claimed for this worker to run in place (see `EagerClaim`).
    claimed: WorkItem | None = None
    #: (instance id, version): steps this worker's versioning left for a worker of that version.
    parked: list[tuple[str, str | None]] = field(default_factory=list)


@dataclass(frozen=True)
class EagerClaim:
    """Lets a step claim its only new activity for the calling worker, when that worker serves it:
    the work item is written already leased, which saves the worker a claim transaction."""

    owner: str
    lease_seconds: float
    serves: Callable[[str], bool]


@dataclass
class StepOutcome:
    dispatch: Dispatch = field(default_factory=Dispatch)
    #: Live executors to keep for the next steps, as (instance id, execution id, executor): valid once
    #: the transaction commits.
    executors: list[tuple[str, str, ReplayExecutor]] = field(default_factory=list)
    #: The step ended its execution with continue_as_new; the new one waits for a step.
    continued_as_new: bool = False
    #: After continue_as_new: the new execution's start and the events carried over to it, for its
    #: first step (see `Stepper.run`).
    next_execution: list[Delivery] = field(default_factory=list)
    #: Work items the step wrote; their ids are known once the step's writes are sent.
    work: NewWork = field(default_factory=NewWork)
    #: Sub-orchestrations the step created, their start events not posted yet (see `Stepper.run`).
    children: list[NewChild] = field(default_factory=list)

    def work_written(self) -> None:
        """Once the step's writes are sent: its new work items go into the dispatch, by id."""
        self.dispatch.activities += self.work.activities
        self.dispatch.claimed = self.work.claimed
