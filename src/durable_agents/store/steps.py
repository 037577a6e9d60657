"""The orchestrator step: lock an instance, replay it with its new events, persist what it decided.

Everything a step decides (history, work items, timers, child instances, the parent's inbox,
the status) is written in the caller's one transaction; the messages it implies are returned as
a `Dispatch` to publish after commit.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, TypeGuard

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from ..errors import FailureDetails, InstanceExistsError, NotRegisteredError
from ..models import (
    InboxRow,
    Instance,
    WorkItem,
    history_table,
    idempotency_key,
    inbox_table,
    instances_table,
    timers_table,
    work_items_table,
)
from ..orchestrator.context import OrchestrationContext
from ..orchestrator.executor import ReplayExecutor, StepResult
from ..orchestrator.history import (
    EventRaised,
    EventSent,
    ExecutionResumed,
    ExecutionStarted,
    ExecutionSuspended,
    ExecutionTerminated,
    FailureInfo,
    HistoryEvent,
    StepStarted,
    SubOrchestrationCompleted,
    SubOrchestrationCreated,
    SubOrchestrationFailed,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    TimerCreated,
    event_from_json,
    event_to_json,
)
from ..registry import ActivityContext, Registry, invoke
from ..serialization import encode
from . import dialect, inbox, work
from .step_reads import InboxRows, lock_instance, read_inbox, take_and_read_inbox, take_leased_item
from .work import Completion
from .writes import StepWrites

if TYPE_CHECKING:
    from .writes import AnyRow

log = logging.getLogger(__name__)

TERMINAL = frozenset({"COMPLETED", "FAILED", "TERMINATED"})

#: Rounds of in-step activities one step runs before it leaves the rest to work items, so that code
#: calling them in a loop cannot hold a step's transaction open without end.
IN_STEP_ROUNDS = 8

#: Set in a step's `Session.info` to run each in-step activity under a savepoint of its own. A step
#: runs without them first, two round trips fewer per activity: in-step activities rarely fail, and
#: one that does raises InStepActivityError, whose step is rolled back and run again with them.
ISOLATE_IN_STEP = "durable_agents.isolate_in_step"


class InStepActivityError(Exception):
    """An in-step activity failed in a step run without savepoints: run the step again, with them."""


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


@dataclass(frozen=True)
class EagerClaim:
    """Lets a step claim its only new activity for the calling worker, when that worker serves it:
    the work item is written already leased, which saves the worker a claim transaction."""

    owner: str
    lease_seconds: float
    serves: Callable[[str], bool]


@dataclass
class StepOutcome:
    dispatch: Dispatch
    #: Live executors to keep for the next steps, as (instance id, execution id, executor): valid once
    #: the transaction commits.
    executors: list[tuple[str, str, ReplayExecutor]] = field(default_factory=list)
    #: The step ended its execution with continue_as_new; the new one waits for a step.
    continued_as_new: bool = False
    #: After continue_as_new: the new execution's start and the events carried over to it, for its
    #: first step (see `run_step`), as (execution id, event).
    next_execution: list[tuple[str | None, HistoryEvent]] = field(default_factory=list)
    #: Work items the step wrote.
    work_items: int = 0
    #: Sub-orchestrations the step created, their start events not posted yet (see `run_step`).
    children: list[NewChild] = field(default_factory=list)


@dataclass(frozen=True)
class NewChild:
    """A sub-orchestration created in this transaction: its instance row as inserted, and its start."""

    row: Mapping[str, Any]
    started: ExecutionStarted


class ExecutorCache:
    """Live executors of running instances, so a step replays only its new events (bounded cost)."""

    def __init__(self, capacity: int = 512) -> None:
        self._entries: OrderedDict[tuple[str, str], tuple[str, ReplayExecutor]] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def take(self, taskhub: str, instance_id: str, execution_id: str, history_length: int) -> ReplayExecutor | None:
        """Remove and return the executor if it has seen exactly the stored history."""
        with self._lock:
            entry = self._entries.pop((taskhub, instance_id), None)
        if entry is None:
            return None
        cached_execution, executor = entry
        if cached_execution != execution_id or executor.history_length != history_length:
            return None
        return executor

    def put(self, taskhub: str, instance_id: str, execution_id: str, executor: ReplayExecutor) -> None:
        if self._capacity == 0:
            return
        with self._lock:
            self._entries[(taskhub, instance_id)] = (execution_id, executor)
            self._entries.move_to_end((taskhub, instance_id))
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)


def new_execution_id() -> str:
    return uuid.uuid4().hex


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
    parent_execution_id: str | None
    parent_task_id: int | None
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
        notify = inbox.notify_payload(self.taskhub, self.instance_id) if self._announce else None
        writes.update(instances_table, where, dict(self._changes), notify=notify)
        self._changes.clear()
        object.__setattr__(self, "_announce", False)


#: An event for the step: the inbox row it came from (None for an eager completion) and its execution.
Arrival = tuple[int | None, str | None, HistoryEvent]


def run_step(
    session: Session,
    *,
    taskhub: str,
    instance_id: str,
    registry: Registry,
    cache: ExecutorCache,
    max_payload_bytes: int,
    eager: EagerClaim | None = None,
    completion: Completion | None = None,
) -> StepOutcome:
    """One step of the instance. `completion`, the outcome of an activity this worker ran, is taken
    after the instance's row lock (the order every step takes its locks in)."""
    row = lock_instance(session, taskhub, instance_id)
    if row is None:  # purged meanwhile: nobody waits for the outcome
        if completion is not None:
            take_leased_item(session, completion[0])
        return StepOutcome(Dispatch())
    arrivals: list[Arrival] = []
    item = completion[0] if completion is not None else None
    taken, inbox_rows = take_and_read_inbox(session, taskhub, instance_id, item)
    if completion is not None:
        item, outcome = completion
        if taken:
            # The item was still ours: deleting it made this the one completion of the task, so it
            # goes straight into the step, without the round trip through the inbox.
            arrivals.append((None, item.execution_id, outcome))
        else:
            work.complete(session, item, outcome)  # lease lost: recorded once, under the task's key
            inbox_rows = read_inbox(session, taskhub, instance_id)  # where it may be the first completion
    instance = LockedInstance(dict(row._mapping))
    writes = StepWrites(session)
    outcome_of_step = _step(
        session, writes, instance, row.now, inbox_rows, arrivals, registry, cache, max_payload_bytes, eager
    )
    if outcome_of_step.continued_as_new:
        # The new execution's first step runs in this transaction too: a step and a message saved on
        # every continue_as_new, which agent sessions make once per turn. Only this one: an execution
        # that continues as new again at once gets a step of its own, so no transaction runs long.
        instance.save(writes)
        writes.send()
        ended = outcome_of_step.dispatch
        ended.steps.remove(instance_id)
        # Its events go straight in; anything else in the inbox came with a wake-up of its own.
        started: list[Arrival] = [(None, execution, event) for execution, event in outcome_of_step.next_execution]
        outcome_of_step = _step(
            session, writes, instance, row.now, [], started, registry, cache, max_payload_bytes, eager
        )
        outcome_of_step.dispatch.steps[:0] = ended.steps
    for execution, event in outcome_of_step.next_execution:  # continued as new again: a step of its own
        inbox.post(session, taskhub, instance_id, event, execution_id=execution)
    instance.save(writes)
    child = None
    if len(outcome_of_step.children) == 1 and not outcome_of_step.work_items:
        child = _step_child_inline(session, writes, outcome_of_step, row.now, registry, cache, max_payload_bytes, eager)
    else:
        for new in outcome_of_step.children:
            inbox.post(session, taskhub, new.row["instance_id"], new.started, execution_id=new.started.execution_id)
    writes.send()
    if child is not None:  # once sent: the work items' ids are known then
        _merge_child(outcome_of_step, child)
    return outcome_of_step


def _step_child_inline(
    session: Session,
    writes: StepWrites,
    parent: StepOutcome,
    now: datetime,
    registry: Registry,
    cache: ExecutorCache,
    max_payload_bytes: int,
    eager: EagerClaim | None,
) -> StepOutcome:
    """The first step of the one child the parent's step created, in the parent's transaction: a step, a
    transaction and a message saved on every sub-orchestration, which every agent turn is. Only the
    first: the child's later steps are its own. The parent must not have written work items, whose
    claim and chord are the parent's."""
    (new,) = parent.children
    # Inserted by this transaction, so locked already; its start goes straight into the step, not
    # through the inbox.
    child = LockedInstance(new.row)
    arrival: Arrival = (None, new.started.execution_id, new.started)
    outcome = _step(session, writes, child, now, [], [arrival], registry, cache, max_payload_bytes, eager)
    child.save(writes)
    return outcome


def _merge_child(parent: StepOutcome, child: StepOutcome) -> None:
    dispatch, child_id = parent.dispatch, parent.children[0].row["instance_id"]
    dispatch.steps = [instance_id for instance_id in dispatch.steps if instance_id != child_id]
    dispatch.steps += child.dispatch.steps
    dispatch.activities = child.dispatch.activities
    dispatch.chord_instance = child.dispatch.chord_instance
    dispatch.claimed = child.dispatch.claimed
    parent.executors += child.executors


def _step(
    session: Session,
    writes: StepWrites,
    instance: LockedInstance,
    now: datetime,
    inbox_rows: InboxRows,
    arrivals: list[Arrival],
    registry: Registry,
    cache: ExecutorCache,
    max_payload_bytes: int,
    eager: EagerClaim | None,
) -> StepOutcome:
    dispatch = Dispatch()
    taskhub, instance_id = instance.taskhub, instance.instance_id
    events: list[Arrival] = [(r.id, r.execution_id, event_from_json(r.event)) for r in inbox_rows] + arrivals
    if not events:
        return StepOutcome(dispatch)
    if instance.status in TERMINAL:
        _delete_inbox(writes, [r.id for r in inbox_rows])
        return StepOutcome(dispatch)

    terminated = next((e for _, _, e in events if isinstance(e, ExecutionTerminated)), None)
    if terminated is not None:
        _terminate(session, writes, instance, terminated, now, dispatch)
        return StepOutcome(dispatch)

    inbox_split = _sort_inbox(instance, events)
    batch, suspended = inbox_split.batch, inbox_split.suspended
    started = instance.history_length > 0 or any(isinstance(e, ExecutionStarted) for e in batch)
    if not started:
        return StepOutcome(dispatch)  # events for an instance whose start is still scheduled
    if not batch:  # only stale completions, or events held while suspended: no step to record
        _delete_inbox(writes, inbox_split.consumed)
        _keep_held(session, instance, inbox_split)
        return StepOutcome(dispatch)
    if inbox_split.kept and not suspended:
        dispatch.steps.append(instance_id)  # events held back while suspended, now deliverable

    executor = cache.take(taskhub, instance_id, instance.execution_id, instance.history_length)
    if executor is None:
        executor = _fresh_executor(session, instance, registry, max_payload_bytes)
    step_events: list[HistoryEvent] = [StepStarted(timestamp=now), *batch]
    # Serialised before the code runs: the code may mutate the values it is handed (its input,
    # results, event data), and history must record what was delivered, not what became of it.
    recorded = [event_to_json(event) for event in step_events]
    result = executor.execute(step_events)
    result = _run_in_step_activities(session, instance, executor, result, recorded, registry, max_payload_bytes)

    _delete_inbox(writes, inbox_split.consumed)
    _keep_held(session, instance, inbox_split)
    if result.custom_status_changed:
        instance.custom_status = result.custom_status
    instance.updated_at = now

    _deliver_sent_events(session, instance, result, dispatch)
    if result.outcome == "continued_as_new":
        next_execution = _continue_as_new(writes, instance, result, dispatch)
        instance.announce()
        return StepOutcome(dispatch, continued_as_new=True, next_execution=next_execution)

    _append_history(writes, instance, recorded)
    children: list[NewChild] = []
    new_activities = _schedule(session, writes, instance, result, registry, dispatch, eager, now, children)
    previous_status = instance.status
    if result.outcome == "running":
        instance.status = "SUSPENDED" if suspended else "RUNNING"
        if result.waiting_on_all and new_activities > 1:
            dispatch.chord_instance = instance_id
    else:
        _finish(session, writes, instance, result, now, dispatch)
    if instance.status != previous_status or result.custom_status_changed:
        instance.announce()
    cached = [(instance_id, instance.execution_id, executor)] if result.outcome == "running" else []
    return StepOutcome(dispatch, cached, work_items=new_activities, children=children)


def _run_in_step_activities(
    session: Session,
    instance: LockedInstance,
    executor: ReplayExecutor,
    result: StepResult,
    recorded: list[dict[str, Any]],
    registry: Registry,
    max_payload_bytes: int,
) -> StepResult:
    """Run the in-step activities the code scheduled (`ActivitySpec.in_step`) and feed their outcomes
    back to it, round after round, all in this transaction. Appends every event of the step to
    `recorded`, in the order they happened; returns the last round's result, whose new events are every
    other action of the step (work items, timers, children, events sent) for the step to carry out."""
    actions: list[HistoryEvent] = []
    custom_status_changed = result.custom_status_changed
    for _ in range(IN_STEP_ROUNDS):
        here = [event for event in result.new_events if _is_in_step(event, registry)]
        if not here or result.outcome != "running":
            break
        outcomes = [_run_in_step(session, instance, event, registry, max_payload_bytes) for event in here]
        recorded += [event_to_json(event) for event in [*result.new_events, *outcomes]]
        actions += [event for event in result.new_events if not _is_in_step(event, registry)]
        result = executor.execute(outcomes)
        custom_status_changed = custom_status_changed or result.custom_status_changed
    recorded += [event_to_json(event) for event in result.new_events]
    result.new_events = [*actions, *result.new_events]
    result.custom_status_changed = custom_status_changed
    return result


def _is_in_step(event: HistoryEvent, registry: Registry) -> TypeGuard[TaskScheduled]:
    if not isinstance(event, TaskScheduled):
        return False
    spec = registry.activities.get(event.name)
    return spec is not None and spec.in_step


def _run_in_step(
    session: Session, instance: LockedInstance, event: TaskScheduled, registry: Registry, max_payload_bytes: int
) -> TaskCompleted | TaskFailed:
    """One in-step activity. Under a savepoint (ISOLATE_IN_STEP), a failure undoes its writes and the code
    gets it; without one, a failure raises InStepActivityError (the whole step is then undone)."""
    spec = registry.activity(event.name)
    context = ActivityContext(
        taskhub=instance.taskhub,
        instance_id=instance.instance_id,
        task_id=event.task_id,
        name=event.name,
        attempt=1,
        idempotency_key=idempotency_key(instance.taskhub, instance.instance_id, instance.execution_id, event.task_id),
    )
    isolated = bool(session.info.get(ISOLATE_IN_STEP))
    try:
        with session.begin_nested() if isolated else nullcontext():
            value = invoke(spec, context, event.input, session)
            # Inside the savepoint: a result too large to record undoes the writes that made it.
            result = encode(value, what=f"result of activity {event.name!r}", limit=max_payload_bytes)
    except Exception as error:
        if not isolated:
            raise InStepActivityError(f"in-step activity {event.name!r} failed") from error
        log.info("in-step activity %s of %s failed: %r", event.name, instance.instance_id, error)
        return TaskFailed(task_id=event.task_id, failure=FailureInfo.of(FailureDetails.from_exception(error)))
    return TaskCompleted(task_id=event.task_id, result=result)


@dataclass
class InboxSplit:
    batch: list[HistoryEvent] = field(default_factory=list)  # events this step applies, in order
    consumed: list[int] = field(default_factory=list)  # inbox rows to delete
    kept: list[Arrival] = field(default_factory=list)  # events left for later (arrived while suspended)
    suspended: bool = False  # the suspension state once the batch is applied


def _sort_inbox(instance: LockedInstance, events: list[Arrival]) -> InboxSplit:
    split = InboxSplit(suspended=instance.status == "SUSPENDED")
    for arrival in events:
        row_id, execution_id, event = arrival
        consumed = [row_id] if row_id is not None else []
        if execution_id is not None and execution_id != instance.execution_id:
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


def _keep_held(session: Session, instance: LockedInstance, split: InboxSplit) -> None:
    """Events held while suspended stay in the inbox; an eager completion is not there yet, so it goes in."""
    for row_id, execution_id, event in split.kept:
        if row_id is None and isinstance(event, (TaskCompleted, TaskFailed)):
            assert execution_id is not None
            inbox.post(
                session,
                instance.taskhub,
                instance.instance_id,
                event,
                execution_id=execution_id,
                dedupe_key=inbox.task_key(execution_id, event.task_id),
            )


def _fresh_executor(
    session: Session, instance: LockedInstance, registry: Registry, max_payload_bytes: int
) -> ReplayExecutor:
    try:
        orchestrator = registry.orchestration(instance.name).fn
    except NotRegisteredError as error:
        missing = error

        def orchestrator(context: OrchestrationContext) -> Any:
            raise missing

    executor = ReplayExecutor(
        orchestrator, instance.instance_id, max_payload_bytes=max_payload_bytes, result_type_of=registry.result_type_of
    )
    if instance.history_length:
        history = history_table.c
        stored = session.scalars(
            select(history.event)
            .where(history.taskhub == instance.taskhub, history.instance_id == instance.instance_id)
            .order_by(history.seq)
        ).all()
        executor.replay(event_from_json(event) for event in stored)
    return executor


def _append_history(writes: StepWrites, instance: LockedInstance, events: list[dict[str, Any]]) -> None:
    base = instance.history_length
    writes.insert(
        history_table,
        [
            {
                "taskhub": instance.taskhub,
                "instance_id": instance.instance_id,
                "seq": base + offset,
                "execution_id": instance.execution_id,
                "event": event,
            }
            for offset, event in enumerate(events)
        ],
    )
    instance.history_length = base + len(events)


def _schedule(
    session: Session,
    writes: StepWrites,
    instance: LockedInstance,
    result: StepResult,
    registry: Registry,
    dispatch: Dispatch,
    eager: EagerClaim | None,
    now: datetime,
    children: list[NewChild],
) -> int:
    """Turn the step's new actions into work items, timers and child instances (their ids added to
    `children`); how many work items.

    An instance that ends in this step gets no work items or timers: nothing would consume them.
    """
    hub, execution_id = instance.taskhub, instance.execution_id
    work: list[dict[str, Any]] = []
    timers: list[dict[str, Any]] = []
    for event in result.new_events:
        if isinstance(event, TaskScheduled):
            try:
                registry.activity(event.name)
            except NotRegisteredError as error:
                _fail_task_now(session, instance, event.task_id, error)
                dispatch.steps.append(instance.instance_id)
                continue
            work.append(
                {
                    "taskhub": hub,
                    "instance_id": instance.instance_id,
                    "execution_id": execution_id,
                    "task_id": event.task_id,
                    "name": event.name,
                    "input": event.input,
                    "status": "pending",
                    "attempts": 0,
                    "lease_owner": None,
                    "lease_expires_at": None,
                }
            )
        elif isinstance(event, TimerCreated):
            timers.append(
                {
                    "taskhub": hub,
                    "instance_id": instance.instance_id,
                    "execution_id": execution_id,
                    "task_id": event.task_id,
                    "fire_at": event.fire_at,
                    "purpose": event.purpose,
                }
            )
        elif isinstance(event, SubOrchestrationCreated):
            created = _create_child(session, instance, event, dispatch)
            children += [created] if created is not None else []
    if result.outcome != "running":
        return 0
    claim = eager is not None and len(work) == 1 and eager.serves(work[0]["name"])
    if claim:
        assert eager is not None
        expires = now + timedelta(seconds=eager.lease_seconds)
        work[0].update(status="running", lease_owner=eager.owner, lease_expires_at=expires, attempts=1)

    def dispatch_work(rows: Sequence[AnyRow]) -> None:
        ids = {row.task_id: row.id for row in rows}
        if claim:
            dispatch.claimed = WorkItem(id=ids[work[0]["task_id"]], **work[0])
        else:
            dispatch.activities.extend((ids[w["task_id"]], w["name"]) for w in work)

    writes.insert(work_items_table, work, returning=("id", "task_id"), then=dispatch_work)
    writes.insert(timers_table, timers)
    return len(work)


def _deliver_sent_events(session: Session, instance: LockedInstance, result: StepResult, dispatch: Dispatch) -> None:
    from .instances import ensure_started  # here, not at the top: instances imports this module

    for event in result.new_events:
        if not isinstance(event, EventSent):
            continue
        if event.start_name is not None:
            ensure_started(
                session,
                taskhub=instance.taskhub,
                instance_id=event.instance_id,
                name=event.start_name,
                input=event.start_input,
            )
        target = session.get(Instance, (instance.taskhub, event.instance_id))
        if target is None or target.status in TERMINAL:
            log.warning(
                "event %r from %s to %s dropped: no such running instance",
                event.name,
                instance.instance_id,
                event.instance_id,
            )
            continue
        inbox.post(
            session,
            instance.taskhub,
            event.instance_id,
            EventRaised(name=event.name, data=event.data),
            dedupe_key=f"sent:{instance.instance_id}:{instance.execution_id}:{event.task_id}",
        )
        dispatch.steps.append(event.instance_id)


def _fail_task_now(session: Session, instance: LockedInstance, task_id: int, error: Exception) -> None:
    failure = FailureInfo.of(FailureDetails.from_exception(error))
    inbox.post(
        session,
        instance.taskhub,
        instance.instance_id,
        TaskFailed(task_id=task_id, failure=failure),
        execution_id=instance.execution_id,
        dedupe_key=inbox.task_key(instance.execution_id, task_id),
    )


def _create_child(
    session: Session, parent: LockedInstance, event: SubOrchestrationCreated, dispatch: Dispatch
) -> NewChild | None:
    """Create the child instance, or fail the task if its id is taken. Its start event is left to the
    caller, which posts it to the inbox or runs the child's first step with it."""
    execution_id = new_execution_id()
    values = {
        "taskhub": parent.taskhub,
        "instance_id": event.instance_id,
        "name": event.name,
        "execution_id": execution_id,
        "input": event.input,
        "parent_instance_id": parent.instance_id,
        "parent_execution_id": parent.execution_id,
        "parent_task_id": event.task_id,
    }
    created = session.execute(_create_child_statement(dialect.dialect_name(session)), values).first()
    if created is None:
        existing = session.scalar(
            select(Instance.status).where(Instance.taskhub == parent.taskhub, Instance.instance_id == event.instance_id)
        )
        _fail_task_now(session, parent, event.task_id, InstanceExistsError(event.instance_id, existing or "unknown"))
        dispatch.steps.append(parent.instance_id)
        return None
    dispatch.steps.append(event.instance_id)
    started = ExecutionStarted(
        name=event.name, input=event.input, execution_id=execution_id, parent_instance_id=parent.instance_id
    )
    return NewChild(dict(created._mapping), started)


def insert_new_instance(backend: str) -> Any:
    """An INSERT of a pending instance's row that does nothing if the id is taken, from bind parameters
    named after the columns (the parent's may be None): for statements built once per database."""
    columns = instances_table.c
    names = ("taskhub", "instance_id", "name", "execution_id", "input", "parent_instance_id",
             "parent_execution_id", "parent_task_id")  # fmt: skip
    values: dict[str, Any] = {name: bindparam(name, type_=columns[name].type) for name in names}
    return (
        dialect.insert_for(backend, instances_table)
        .values(**values, status="PENDING", history_length=0)
        .on_conflict_do_nothing(index_elements=["taskhub", "instance_id"])
    )


@cache
def _create_child_statement(backend: str) -> Any:
    """The child's row, unless its id is taken, returned whole; built once."""
    return insert_new_instance(backend).returning(*instances_table.c)


def _finish(
    session: Session,
    writes: StepWrites,
    instance: LockedInstance,
    result: StepResult,
    now: datetime,
    dispatch: Dispatch,
) -> None:
    instance.completed_at = now
    if result.outcome == "completed":
        instance.status = "COMPLETED"
        instance.output = result.result
        done: HistoryEvent = SubOrchestrationCompleted(task_id=instance.parent_task_id or 0, result=result.result)
    else:
        assert result.failure is not None
        instance.status = "FAILED"
        instance.failure = result.failure.to_json()
        done = SubOrchestrationFailed(task_id=instance.parent_task_id or 0, failure=FailureInfo.of(result.failure))
    _drop_pending_work(writes, instance)
    _notify_parent(writes, instance, done, dispatch)


def _notify_parent(writes: StepWrites, instance: LockedInstance, event: HistoryEvent, dispatch: Dispatch) -> None:
    if instance.parent_instance_id is None or instance.parent_execution_id is None:
        return
    row = {
        "taskhub": instance.taskhub,
        "instance_id": instance.parent_instance_id,
        "execution_id": instance.parent_execution_id,
        "dedupe_key": f"sub:{instance.parent_execution_id}:{instance.parent_task_id}",
        "event": event_to_json(event),
    }
    # Posted once, and only to a parent that has not been purged meanwhile.
    writes.insert(inbox_table, [row], skip_conflicts_on=inbox.DEDUPE_KEY, for_existing_instances=True)
    dispatch.steps.append(instance.parent_instance_id)


def _drop_pending_work(writes: StepWrites, instance: LockedInstance) -> None:
    """An ended instance needs no more activities or timers; late results are discarded on arrival.

    Never in a step that also adds work items or timers: its writes share one snapshot (see `StepWrites`)."""
    for table in (work_items_table, timers_table):
        writes.delete(table, {"taskhub": instance.taskhub, "instance_id": instance.instance_id})


def _delete_inbox(writes: StepWrites, ids: list[int]) -> None:
    writes.delete(inbox_table, {"id": ids})


def _continue_as_new(
    writes: StepWrites, instance: LockedInstance, result: StepResult, dispatch: Dispatch
) -> list[tuple[str | None, HistoryEvent]]:
    """Start a new execution in place: fresh history, the new input. Returns its start and the
    unconsumed events carried over, as (execution id, event), for the caller to deliver."""
    _drop_pending_work(writes, instance)
    writes.delete(history_table, {"taskhub": instance.taskhub, "instance_id": instance.instance_id})
    instance.execution_id = new_execution_id()
    instance.history_length = 0
    instance.input = result.continue_input
    instance.output = None
    instance.status = "CONTINUED_AS_NEW"
    dispatch.steps.append(instance.instance_id)
    start = ExecutionStarted(name=instance.name, input=result.continue_input, execution_id=instance.execution_id)
    carried: list[EventRaised] = result.carryover_events
    return [(instance.execution_id, start), *((None, event) for event in carried)]


def _terminate(
    session: Session,
    writes: StepWrites,
    instance: LockedInstance,
    event: ExecutionTerminated,
    now: datetime,
    dispatch: Dispatch,
) -> None:
    session.execute(
        delete(InboxRow).where(InboxRow.taskhub == instance.taskhub, InboxRow.instance_id == instance.instance_id)
    )
    if instance.history_length:
        _append_history(writes, instance, [event_to_json(StepStarted(timestamp=now)), event_to_json(event)])
    instance.status = "TERMINATED"
    instance.output = event.output
    instance.completed_at = now
    instance.updated_at = now
    _drop_pending_work(writes, instance)
    children = session.scalars(
        select(Instance.instance_id).where(
            Instance.taskhub == instance.taskhub,
            Instance.parent_instance_id == instance.instance_id,
            Instance.status.not_in(TERMINAL),
        )
    ).all()
    for child in children:
        inbox.post(session, instance.taskhub, child, ExecutionTerminated(output=event.output))
        dispatch.steps.append(child)
    failure = FailureDetails("TerminatedError", f"sub-orchestration {instance.instance_id!r} was terminated")
    _notify_parent(
        writes,
        instance,
        SubOrchestrationFailed(task_id=instance.parent_task_id or 0, failure=FailureInfo.of(failure)),
        dispatch,
    )
    instance.announce()
