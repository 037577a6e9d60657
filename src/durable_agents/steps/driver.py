"""The orchestrator step: lock an instance, replay it with its new events, have the store write what it decided.

Everything a step decides (history, work items, timers, child instances, the parent's inbox, the
status) is written in the caller's one transaction; the messages it implies come back as a `Dispatch`
to publish after commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from .. import ids
from ..errors import NotRegisteredError
from ..orchestrator.executor import ReplayExecutor, StepResult
from ..orchestrator.history import (
    EventSent,
    ExecutionRewound,
    ExecutionStarted,
    ExecutionTerminated,
    HistoryEvent,
    StepStarted,
    SubOrchestrationCreated,
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    TimerCreated,
    event_from_json,
    event_to_json,
)
from ..registry import Registry
from ..state import TERMINAL
from ..store import decisions, entities, inbox, work
from ..store.decisions import Lease, NewChild, NewWork, Wakes
from ..store.locked import LockedInstance
from ..store.step_reads import InboxRows, lock_instance, read_inbox, take_and_read_inbox, take_leased_item
from ..store.work import Completion
from ..store.writes import StepWrites
from .arrivals import Arrival, InboxSplit, sort_arrivals
from .cache import ExecutorCache
from .entity_sends import send_to_entities
from .entity_step import step_entity
from .in_step import run_in_step_activities
from .outcome import Dispatch, EagerClaim, StepOutcome
from .replay import fresh_executor
from .rewind import rewind
from .versions import VersionGate, park


@dataclass(frozen=True)
class Stepper:
    """What every step a worker runs shares: its registry, its executor cache, the payload limit, and
    (on a worker that runs activities in place) the eager claim."""

    registry: Registry
    cache: ExecutorCache
    max_payload_bytes: int
    eager: EagerClaim | None = None
    #: The worker's versioning; None runs every instance.
    gate: VersionGate | None = None

    def run(
        self, session: Session, taskhub: str, instance_id: str, completion: Completion | None = None
    ) -> StepOutcome:
        """One step of the instance. `completion`, the outcome of an activity this worker ran, is taken
        after the instance's row lock (the order every step takes its locks in)."""
        if ids.is_entity_instance(instance_id):  # entities have no work items, so never a completion
            return step_entity(session, self.registry, self.max_payload_bytes, taskhub, instance_id)
        row = lock_instance(session, taskhub, instance_id)
        if row is None:  # purged meanwhile: nobody waits for the outcome
            if completion is not None:
                take_leased_item(session, completion[0])
            return StepOutcome()
        inbox_rows, arrivals = _arrivals(session, taskhub, instance_id, completion)
        instance = LockedInstance(dict(row._mapping))
        writes = decisions.open_writes(session)
        outcome = self._step(session, writes, instance, row.now, inbox_rows, arrivals)
        if outcome.continued_as_new:
            outcome = self._first_step_of_next_execution(session, writes, instance, row.now, outcome)
        for execution, event in outcome.next_execution:  # continued as new again: a step of its own
            inbox.post(session, taskhub, instance_id, event, execution_id=execution)
        instance.save(writes)
        child = None
        if len(outcome.children) == 1 and not outcome.work.count:
            child = self._first_step_of_child(session, writes, outcome.children[0], row.now)
        else:
            for new in outcome.children:
                inbox.post(session, taskhub, new.row["instance_id"], new.started, execution_id=new.started.execution_id)
        writes.send()
        outcome.work_written()
        if child is not None:
            child.work_written()
            _merge_child(outcome, child)
        return outcome

    def _first_step_of_next_execution(
        self, session: Session, writes: StepWrites, instance: LockedInstance, now: datetime, ended: StepOutcome
    ) -> StepOutcome:
        """The new execution's first step, in this transaction too: a step and a message saved on every
        continue_as_new, which agent sessions make once per turn. Only this one: an execution that
        continues as new again at once gets a step of its own, so no transaction runs long."""
        instance.save(writes)
        writes.send()
        ended.dispatch.steps.remove(instance.instance_id)
        # Its events go straight in; anything else in the inbox came with a wake-up of its own.
        started: list[Arrival] = [(None, execution, event) for execution, event in ended.next_execution]
        outcome = self._step(session, writes, instance, now, [], started)
        outcome.dispatch.steps[:0] = ended.dispatch.steps
        return outcome

    def _first_step_of_child(self, session: Session, writes: StepWrites, new: NewChild, now: datetime) -> StepOutcome:
        """The first step of the one child the parent's step created, in the parent's transaction: a step, a
        transaction and a message saved on every sub-orchestration, which every agent turn is. Only the
        first: the child's later steps are its own. The parent must not have written work items, whose
        claim and chord are the parent's."""
        # Inserted by this transaction, so locked already; its start goes straight into the step, not
        # through the inbox.
        child = LockedInstance(new.row)
        arrival: Arrival = (None, new.started.execution_id, new.started)
        outcome = self._step(session, writes, child, now, [], [arrival])
        child.save(writes)
        return outcome

    def _step(
        self,
        session: Session,
        writes: StepWrites,
        instance: LockedInstance,
        now: datetime,
        inbox_rows: InboxRows,
        arrivals: list[Arrival],
    ) -> StepOutcome:
        events: list[Arrival] = [(r.id, r.execution_id, event_from_json(r.event)) for r in inbox_rows] + arrivals
        if not events:
            return StepOutcome()
        if instance.status in TERMINAL:
            decisions.delete_inbox(writes, [r.id for r in inbox_rows])
            return StepOutcome()
        terminated = next((e for _, _, e in events if isinstance(e, ExecutionTerminated)), None)
        if terminated is not None:
            return StepOutcome(Dispatch(steps=decisions.terminate(session, writes, instance, terminated, now)))

        split = sort_arrivals(instance.execution_id, instance.status == "SUSPENDED", events)
        started = instance.history_length > 0 or any(isinstance(e, ExecutionStarted) for e in split.batch)
        if not started:
            return StepOutcome()  # events for an instance whose start is still scheduled
        if not split.batch:  # only stale completions, or events held while suspended: no step to record
            decisions.delete_inbox(writes, split.consumed)
            _keep_held(session, instance, split)
            return StepOutcome()
        verdict = self.gate.verdict(instance) if self.gate is not None else "run"
        if verdict == "reject":  # untouched, for a worker of its version (see ARCHITECTURE.md, "Versions")
            park(session, instance, events)
            return StepOutcome(Dispatch(parked=[(instance.instance_id, instance.version)]))
        dispatch = Dispatch()
        if split.kept and not split.suspended:
            dispatch.steps.append(instance.instance_id)  # events held back while suspended, now deliverable

        if verdict == "fail":
            assert self.gate is not None
            executor = self.gate.refusing_executor(instance, self.max_payload_bytes)
        else:
            executor = self._executor(session, instance)
        batch = [event for event in split.batch if not executor.is_stale(event)]
        if not batch:  # only late outcomes of tasks the code cancelled: nothing for it, nothing to record
            decisions.delete_inbox(writes, split.consumed)
            _keep_held(session, instance, split)
            return StepOutcome(dispatch, [(instance.instance_id, instance.execution_id, executor)])
        executor, recorded, result, rerun = self._run_code(session, instance, executor, batch, now, dispatch)
        result = run_in_step_activities(
            session, instance, executor, result, recorded, self.registry, self.max_payload_bytes
        )
        decisions.delete_inbox(writes, split.consumed)
        _keep_held(session, instance, split)
        if result.custom_status_changed:
            instance.custom_status = result.custom_status
        instance.updated_at = now
        sent = [event for event in result.new_events if isinstance(event, EventSent)]
        dispatch.steps += decisions.deliver_sent_events(session, instance, sent)
        dispatch.steps += send_to_entities(session, instance, result.new_events, self.registry)
        if result.outcome != "running" and executor.state.lock_requested:
            # It ended while its lock was on the way: what is locked for it already is released (the rest
            # of the way, each entity sees its holder has ended).
            dispatch.steps += entities.release_locks_of(session, instance.taskhub, instance.instance_id)
        if result.outcome == "continued_as_new":
            next_execution = decisions.continue_as_new(writes, instance, result.continue_input, result.carryover_events)
            dispatch.steps.append(instance.instance_id)
            instance.announce()
            return StepOutcome(dispatch, continued_as_new=True, next_execution=next_execution)

        decisions.append_history(writes, instance, recorded)
        new_work, children = self._carry_out(session, writes, instance, result, now, dispatch, split.suspended, rerun)
        cached = [(instance.instance_id, instance.execution_id, executor)] if result.outcome == "running" else []
        return StepOutcome(dispatch, cached, work=new_work, children=children)

    def _run_code(
        self,
        session: Session,
        instance: LockedInstance,
        executor: ReplayExecutor,
        batch: list[HistoryEvent],
        now: datetime,
        dispatch: Dispatch,
    ) -> tuple[ReplayExecutor, list[dict[str, Any]], StepResult, list[TaskScheduled]]:
        """Run the code over the step's events: the executor that ran, the events to record, what it decided,
        and the activities a rewind runs again (already in history, so not among the new actions)."""
        request = next((event for event in batch if isinstance(event, ExecutionRewound)), None)
        if request is None:
            step_events: list[HistoryEvent] = [StepStarted(timestamp=now), *batch]
            # Serialised before the code runs: the code may mutate the values it is handed (its input,
            # results, event data), and history must record what was delivered, not what became of it.
            recorded = [event_to_json(event) for event in step_events]
            return executor, recorded, executor.execute(step_events), []
        rewound = rewind(session, instance, self.registry, self.max_payload_bytes, request, now)
        dispatch.steps += rewound.children
        rest = [event for event in batch if event is not request]
        recorded = [event_to_json(event) for event in [*rewound.opening, *rest]]
        executor = rewound.executor
        # Fixed code may end within the replayed history: that ending is this step's result.
        result = executor.continue_replayed() if executor.is_finished else executor.execute(rest)
        return executor, recorded, result, rewound.rerun

    def _executor(self, session: Session, instance: LockedInstance) -> ReplayExecutor:
        """The cached executor that has seen exactly the stored history, or a fresh one that replays it."""
        executor = self.cache.take(
            instance.taskhub, instance.instance_id, instance.execution_id, instance.history_length
        )
        return executor or fresh_executor(session, instance, self.registry, self.max_payload_bytes)

    def _carry_out(
        self,
        session: Session,
        writes: StepWrites,
        instance: LockedInstance,
        result: StepResult,
        now: datetime,
        dispatch: Dispatch,
        suspended: bool,
        rerun: list[TaskScheduled],
    ) -> tuple[NewWork, list[NewChild]]:
        """Write the step's actions (and the activities a rewind runs again) and the instance's new status."""
        new_work, children, wakes = self._schedule(session, writes, instance, result, now, rerun)
        dispatch.steps += wakes
        previous_status = instance.status
        if result.outcome == "running":
            instance.status = "SUSPENDED" if suspended else "RUNNING"
            if result.waiting_on_all and new_work.count > 1:
                dispatch.chord_instance = instance.instance_id
        else:
            dispatch.steps += decisions.finish(writes, instance, now, result.result, result.failure)
        if instance.status != previous_status or result.custom_status_changed:
            instance.announce()
        return new_work, children

    def _schedule(
        self,
        session: Session,
        writes: StepWrites,
        instance: LockedInstance,
        result: StepResult,
        now: datetime,
        rerun: list[TaskScheduled],
    ) -> tuple[NewWork, list[NewChild], Wakes]:
        """Turn the step's new actions into work items, timers and child instances.

        An instance that ends in this step gets no work items or timers: nothing would consume them.
        """
        activities: list[TaskScheduled] = list(rerun)
        timers: list[TimerCreated] = []
        children: list[NewChild] = []
        wakes: Wakes = []
        cancels, withdrawn = _cancellations(result)
        for event in result.new_events:
            if isinstance(event, TaskScheduled | TimerCreated | SubOrchestrationCreated) and event.task_id in withdrawn:
                continue
            if isinstance(event, TaskScheduled):
                try:
                    self.registry.activity(event.name)
                except NotRegisteredError as error:
                    wakes += decisions.fail_task_now(session, instance, event.task_id, error)
                    continue
                activities.append(event)
            elif isinstance(event, TimerCreated):
                timers.append(event)
            elif isinstance(event, SubOrchestrationCreated):
                created = decisions.create_child(session, instance, event)
                if created is None:  # its id is taken: the task failed, which the parent hears next
                    wakes.append(instance.instance_id)
                else:
                    children.append(created)
                    wakes.append(event.instance_id)
        running = result.outcome == "running"
        wakes += decisions.cancel_tasks(session, writes, instance, cancels, drop_pending=running)
        if not running:
            return NewWork(), children, wakes
        eager = self.eager
        lease = None
        if eager is not None and len(activities) == 1 and eager.serves(activities[0].name):
            lease = Lease(eager.owner, eager.lease_seconds)
        return decisions.write_work(writes, instance, activities, timers, now, lease), children, wakes


def _cancellations(result: StepResult) -> tuple[list[TaskCancelled], set[int]]:
    """The step's cancellations of tasks written in earlier steps, and the tasks it both created and
    cancelled: those are never written, so there is nothing to drop either."""
    cancels = [event for event in result.new_events if isinstance(event, TaskCancelled)]
    created = {
        event.task_id
        for event in result.new_events
        if isinstance(event, TaskScheduled | TimerCreated | SubOrchestrationCreated)
    }
    withdrawn = {event.target_task_id for event in cancels if event.target_task_id is not None} & created
    return [event for event in cancels if event.target_task_id not in withdrawn], withdrawn


def _arrivals(
    session: Session, taskhub: str, instance_id: str, completion: Completion | None
) -> tuple[InboxRows, list[Arrival]]:
    """The inbox, and `completion` if it is still this worker's to deliver."""
    item = completion[0] if completion is not None else None
    taken, inbox_rows = take_and_read_inbox(session, taskhub, instance_id, item)
    if completion is None:
        return inbox_rows, []
    item, outcome = completion
    if taken:
        # The item was still ours: deleting it made this the one completion of the task, so it goes
        # straight into the step, without the round trip through the inbox.
        return inbox_rows, [(None, item.execution_id, outcome)]
    work.complete(session, item, outcome)  # lease lost: recorded once, under the task's key
    return read_inbox(session, taskhub, instance_id), []  # where it may be the first completion


def _keep_held(session: Session, instance: LockedInstance, split: InboxSplit) -> None:
    """Events held while suspended stay in the inbox; an eager completion is not there yet, so it goes in."""
    for row_id, execution_id, event in split.kept:
        if row_id is None and isinstance(event, (TaskCompleted, TaskFailed)):
            assert execution_id is not None
            decisions.hold_completion(session, instance, execution_id, event)


def _merge_child(parent: StepOutcome, child: StepOutcome) -> None:
    dispatch, child_id = parent.dispatch, parent.children[0].row["instance_id"]
    dispatch.steps = [instance_id for instance_id in dispatch.steps if instance_id != child_id]
    dispatch.steps += child.dispatch.steps
    dispatch.activities = child.dispatch.activities
    dispatch.chord_instance = child.dispatch.chord_instance
    dispatch.claimed = child.dispatch.claimed
    dispatch.parked += child.dispatch.parked
    parent.executors += child.executors
