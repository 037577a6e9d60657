"""Why an instance is not progressing: finished, suspended, no live worker serves what it needs, or it waits.

`DurableClient.explain(instance_id)` answers with an `Explanation`: a reason code, one sentence for
people, and the things the instance waits for (`Pending`), each with since when and, for work,
which live workers serve it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from .agents.proxy import AGENT_TURN, INTERNAL_ORCHESTRATIONS, SESSION_ORCHESTRATION
from .agents.turn import ROUTED_CALLS, call_of
from .errors import InstanceNotFoundError
from .explanation import Explanation, Pending, Reason
from .ids import EntityId
from .orchestrator import history
from .orchestrator.history import EventSent, SubOrchestrationCompleted, SubOrchestrationCreated, SubOrchestrationFailed
from .orchestrator.history import TimerCreated as TimerCreatedEvent
from .orchestrator.versions import describe, runs
from .orchestrator.waits import EventWait, open_event_waits
from .registry import Registry
from .state import OrchestrationStatus
from .store.db import transaction
from .store.diagnosis import InstanceFacts, gather
from .store.workers import WorkerInfo

#: The event an orchestration waits on for an agent's reply is named `agent_response:<correlation id>`.
_AGENT_RESPONSE = "agent_response:"


#: How deep an explanation follows sub-orchestrations it waits for.
MAX_DEPTH = 4


def explain_instance(
    database_url: str,
    taskhub: str,
    instance_id: str,
    *,
    registry: Registry | None,
    max_payload_bytes: int,
    depth: int = 0,
) -> Explanation:
    """Explain one instance from the store (raises InstanceNotFoundError if it does not exist)."""
    with transaction(database_url) as session:
        facts = gather(session, taskhub, instance_id)

    def explain_child(child_id: str) -> Explanation | None:
        if depth + 1 >= MAX_DEPTH:
            return None
        try:
            return explain_instance(
                database_url, taskhub, child_id, registry=registry, max_payload_bytes=max_payload_bytes, depth=depth + 1
            )
        except InstanceNotFoundError:  # not created yet: the parent's step that starts it is in flight
            return None

    return explain(facts, registry, max_payload_bytes=max_payload_bytes, explain_child=explain_child)


def explain(
    facts: InstanceFacts,
    registry: Registry | None,
    *,
    max_payload_bytes: int,
    explain_child: Callable[[str], Explanation | None] | None = None,
) -> Explanation:
    """Reason over what the store holds; with the orchestration's code in `registry`, event waits are
    found by replaying its history."""
    status = OrchestrationStatus(facts.status)
    hub = facts.taskhub

    def answer(reason: Reason, message: str, pending: list[Pending] | None = None, **extra: Any) -> Explanation:
        return Explanation(
            facts.instance_id,
            facts.name,
            status,
            reason,
            message,
            tuple(pending or ()),
            workers=tuple(facts.live_workers),
            **extra,
        )

    if status.is_terminal:
        return answer(Reason.FINISHED, f"the instance is {status.value}: there is nothing left to do")
    if status == OrchestrationStatus.SUSPENDED:
        since = _last_recorded(facts, "ExecutionSuspended") or facts.updated_at
        return answer(
            Reason.SUSPENDED,
            f"the instance has been suspended since {_at(since)}; resume it to let it go on",
        )
    if facts.scheduled_start_at is not None and facts.scheduled_start_at > facts.now:
        start = Pending("start", facts.name, fires_at=facts.scheduled_start_at)
        return answer(
            Reason.SCHEDULED, f"the instance is scheduled to start at {_at(facts.scheduled_start_at)}", [start]
        )

    serving = _Serving(facts.live_workers, facts.version)
    pending: list[Pending] = []
    if facts.inbox_count:
        pending.append(
            Pending("step", facts.name, since=facts.inbox_since, served_by=serving.orchestration(facts.name))
        )
    for item in facts.work_items:
        expired = item.status == "running" and item.lease_expires_at is not None and item.lease_expires_at < facts.now
        pending.append(
            Pending(
                "activity",
                item.name,
                since=item.created_at,
                task_id=item.task_id,
                # A lease nobody renewed: its worker died, and the sweeper hands the item out again.
                status="lease_expired" if expired else item.status,
                served_by=serving.activity(item.name),
            )
        )
    pending.extend(_open_sub_orchestrations(facts, serving))
    pending.extend(_open_entity_requests(facts))
    waits = _event_waits(facts, registry, max_payload_bytes)
    timeout_timers = {wait.timeout_task_id for wait in waits or () if wait.timeout_task_id is not None}
    pending.extend(_waits_as_pending(facts, waits or [], serving))
    created = {e.task_id: at for e, at in facts.history if isinstance(e, TimerCreatedEvent)}
    for timer in facts.timers:
        if timer.task_id in timeout_timers:
            continue
        if timer.purpose == "event_timeout":  # the code is not at hand: an event with a timeout, name unknown
            pending.append(Pending("event", "", since=created.get(timer.task_id), fires_at=timer.fire_at))
            continue
        pending.append(
            Pending(
                "timer", timer.purpose, since=created.get(timer.task_id), task_id=timer.task_id, fires_at=timer.fire_at
            )
        )

    notes = []
    step_served = serving.orchestration(facts.name)
    if not facts.inbox_count and not step_served:
        notes.append(
            f"no live worker of task hub {hub!r} serves orchestration {facts.name!r}: when what it waits for "
            "happens, nothing will run its next step until one does"
        )
    if waits is None and facts.history:
        has_code = registry is not None and facts.name in registry.orchestrations
        notes.append(
            f"the code of {facts.name!r} no longer replays this instance's history, so the events it waits for "
            "are not listed"
            if has_code
            else f"this client does not have the code of {facts.name!r}, so the events it waits for are not "
            "listed; build the client from the app that registers it to see them"
        )
    unserved = next((p for p in pending if p.needs_worker and not p.served_by), None)
    if unserved is not None:
        return answer(Reason.NO_WORKER, _no_worker(hub, unserved, facts), pending, notes=tuple(notes))
    return _waiting(answer, facts, pending, waits, notes, explain_child)


class _Serving:
    """Which live workers serve a name."""

    def __init__(self, live: list[WorkerInfo], version: str | None = None) -> None:
        self._live = live
        self._version = version

    def orchestration(self, name: str) -> tuple[str, ...]:
        """The live workers that register `name` and whose versioning runs the instance's version."""
        return tuple(
            w.node_name
            for w in self._live
            if name in w.orchestrations
            and (name in INTERNAL_ORCHESTRATIONS or runs(w.version_match, w.code_version, self._version))
        )

    def activity(self, name: str) -> tuple[str, ...]:
        return tuple(w.node_name for w in self._live if name in w.activities)

    def agent(self, name: str) -> tuple[str, ...]:
        return tuple(w.node_name for w in self._live if name in w.agents)


def _waiting(
    answer: Callable[..., Explanation],
    facts: InstanceFacts,
    pending: list[Pending],
    waits: list[EventWait] | None,
    notes: list[str],
    explain_child: Callable[[str], Explanation | None] | None,
) -> Explanation:
    extra = {"notes": tuple(notes)}
    by_kind: dict[str, list[Pending]] = {}
    for item in pending:
        by_kind.setdefault(item.kind, []).append(item)
    if "step" in by_kind:
        step = by_kind["step"][0]
        return answer(
            Reason.QUEUED,
            f"its next step has been queued since {_at(step.since)} and live workers serve it "
            f"({_names(step.served_by)})",
            pending,
            **extra,
        )
    activities = by_kind.get("activity", [])
    running = [a for a in activities if a.status == "running"]
    if running:
        first = running[0]
        return answer(
            Reason.RUNNING,
            f"activity {first.name!r} (task #{first.task_id}) is running on a live worker's lease"
            + (f", with {len(activities) - 1} more activities in flight" if len(activities) > 1 else ""),
            pending,
            **extra,
        )
    if activities:
        first = activities[0]
        state = "lost its worker (its lease expired)" if first.status == "lease_expired" else "been queued"
        return answer(
            Reason.QUEUED,
            f"activity {first.name!r} (task #{first.task_id}) has {state} since {_at(first.since)} and live "
            f"workers serve it ({_names(first.served_by)}); the sweeper dispatches it again if its message is lost",
            pending,
            **extra,
        )
    if "sub_orchestration" in by_kind:
        sub = by_kind["sub_orchestration"][0]
        child = explain_child(sub.instance_id) if explain_child is not None and sub.instance_id else None
        tail = f": {child.message}" if child is not None else ""
        if child is not None:
            pending = [replace(p, status=child.status.value) if p is sub else p for p in pending]
        return answer(
            Reason.WAITING_FOR_SUB_ORCHESTRATION,
            f"it waits for sub-orchestration {sub.name!r} (instance {sub.instance_id!r}) since {_at(sub.since)}{tail}",
            pending,
            child=child,
            **extra,
        )
    if "entity" in by_kind:
        entity = by_kind["entity"][0]
        return answer(
            Reason.WAITING_FOR_ENTITY,
            f"it waits for {entity.name} since {_at(entity.since)} (entity instance {entity.instance_id!r}: "
            "an entity another orchestration holds locked applies nothing else until it is released)",
            pending,
            **extra,
        )
    if "agent" in by_kind:
        agent = by_kind["agent"][0]
        return answer(
            Reason.WAITING_FOR_AGENT,
            f"it waits for agent {agent.name!r} to answer (instance {agent.instance_id!r}) since "
            f"{_at(agent.since)}; live workers host the agent ({_names(agent.served_by)})",
            pending,
            **extra,
        )
    if "event" in by_kind:
        event = by_kind["event"][0]
        what = f"external event {event.name!r}" if event.name else "an external event"
        others = [e.name for e in by_kind["event"][1:] if e.name]
        also = f" (also {', '.join(repr(n) for n in others)})" if others else ""
        deadline = f"; the wait times out at {_at(event.fires_at)}" if event.fires_at else ""
        timers = by_kind.get("timer", [])
        race = f"; a timer fires at {_at(timers[0].fires_at)}" if timers else ""
        hint = (
            ""
            if event.name
            else f" (explain it with a client built from the app that registers {facts.name!r} to see which)"
        )
        return answer(
            Reason.WAITING_FOR_EVENT,
            f"it waits for {what}{also} since {_at(event.since)}{deadline}{race}{hint}",
            pending,
            **extra,
        )
    if "timer" in by_kind:
        timer = by_kind["timer"][0]
        due = (
            " (due: the sweeper fires it within a sweep interval)"
            if timer.fires_at and timer.fires_at <= facts.now
            else ""
        )
        label = "a retry timer" if timer.name == "retry" else "a timer"
        return answer(
            Reason.WAITING_FOR_TIMER,
            f"it waits for {label} (task #{timer.task_id}) that fires at {_at(timer.fires_at)}{due}",
            pending,
            **extra,
        )
    if waits is None:
        return answer(
            Reason.WAITING,
            "it waits for something its code decides, most likely an external event; explain it with a client "
            f"built from the app that registers {facts.name!r} to see which",
            pending,
            **extra,
        )
    return answer(
        Reason.WAITING,
        "nothing durable is pending for it; a step may be in flight right now",
        pending,
        **extra,
    )


def _no_worker(hub: str, item: Pending, facts: InstanceFacts) -> str:
    since = f" since {_at(item.since)}" if item.since else ""
    live = sorted({w.node_name for w in facts.live_workers})
    who = f"live workers: {', '.join(live)}" if live else "no worker of this task hub is live"
    versioned = [w for w in facts.live_workers if item.name in w.orchestrations]
    if item.kind == "step" and versioned:  # served by name, but no live worker's versioning runs its version
        runs_at = ", ".join(sorted({f"{describe(w.code_version)} (match {w.version_match})" for w in versioned}))
        return (
            f"the instance is of version {describe(facts.version)} and waits{since} for a worker of that version: "
            f"the live workers that serve orchestration {item.name!r} run versions {runs_at}; start a worker of "
            f"version {describe(facts.version)} (DurableApp(version=...)) beside them"
        )
    if item.kind == "step":
        what, fix = f"orchestration {item.name!r}", f"an app that registers {item.name!r}, on the orchestrator queue"
    elif item.kind == "activity" and (call := call_of(item.name))[0] in ROUTED_CALLS and call[1] != "agents":
        what = f"activity {item.name!r} (the model and tool calls of agents on queue {call[1]!r})"
        fix = f"an app that hosts the agent, on queue {call[1]!r} (`--queues {call[1]}`)"
    elif item.kind == "activity":
        what, fix = (
            f"activity {item.name!r}",
            f"an app that registers {item.name!r}, on the queue that activity runs on",
        )
    else:
        what = f"agent {item.name!r}"
        fix = (
            f"an app that hosts agent {item.name!r}, on its queue (the agents queue unless Agent(queue=...) names one)"
        )
    return (
        f"no live worker of task hub {hub!r} serves {what}, which the instance has waited for{since} ({who}); "
        f"start `durable-agents worker MODULE:app` with {fix}"
    )


def _event_waits(facts: InstanceFacts, registry: Registry | None, max_payload_bytes: int) -> list[EventWait] | None:
    if registry is None or facts.name not in registry.orchestrations or not facts.history:
        return None
    try:
        return open_event_waits(
            registry.orchestrations[facts.name].fn,
            facts.instance_id,
            [event for event, _ in facts.history],
            max_payload_bytes=max_payload_bytes,
            result_type_of=registry.result_type_of,
            agent_factory=registry.agent_factory,
        )
    except Exception:  # code that no longer replays this history cannot tell
        return None


def _waits_as_pending(facts: InstanceFacts, waits: list[EventWait], serving: _Serving) -> list[Pending]:
    agents = _agent_calls(facts)
    pending = []
    for wait in waits:
        call = agents.get(wait.name[len(_AGENT_RESPONSE) :]) if wait.name.startswith(_AGENT_RESPONSE) else None
        if call is not None:
            agent, session_instance = call
            pending.append(
                Pending("agent", agent, since=wait.since, instance_id=session_instance, served_by=serving.agent(agent))
            )
        else:
            pending.append(Pending("event", wait.name, since=wait.since, fires_at=wait.timeout_at))
    return pending


def _agent_calls(facts: InstanceFacts) -> dict[str, tuple[str, str]]:
    """The agent turns this instance asked for: correlation id -> (agent, session instance)."""
    calls = {}
    for event, _ in facts.history:
        if isinstance(event, EventSent) and event.start_name == SESSION_ORCHESTRATION and isinstance(event.data, dict):
            agent, correlation_id = event.data.get("agent"), event.data.get("correlation_id")
            if isinstance(agent, str) and isinstance(correlation_id, str):
                calls[correlation_id] = (agent, event.instance_id)
    return calls


def _open_sub_orchestrations(facts: InstanceFacts, serving: _Serving) -> list[Pending]:
    """Children not finished; an agent's turn (`agent.run` in the code) is a call to the agent."""
    created: dict[int, tuple[SubOrchestrationCreated, datetime]] = {}
    for event, at in facts.history:
        if isinstance(event, SubOrchestrationCreated):
            created[event.task_id] = (event, at)
        elif isinstance(event, (SubOrchestrationCompleted, SubOrchestrationFailed)):
            created.pop(event.task_id, None)
    pending = []
    for task_id, (event, at) in sorted(created.items()):
        agent = event.input.get("agent") if event.name == AGENT_TURN and isinstance(event.input, dict) else None
        if isinstance(agent, str):
            served = serving.agent(agent)
            pending.append(
                Pending("agent", agent, since=at, task_id=task_id, instance_id=event.instance_id, served_by=served)
            )
        else:
            pending.append(
                Pending("sub_orchestration", event.name, since=at, task_id=task_id, instance_id=event.instance_id)
            )
    return pending


def _open_entity_requests(facts: InstanceFacts) -> list[Pending]:
    """Entity calls and lock requests not answered yet."""
    asked: dict[int, tuple[str, str, datetime]] = {}
    for event, at in facts.history:
        if isinstance(event, history.EntityCalled):
            what = f"operation {event.operation!r} of entity {event.entity!r}"
            asked[event.task_id] = (what, EntityId.of(event.entity).instance_id, at)
        elif isinstance(event, history.EntityLockRequested):
            what = f"the lock on {', '.join(map(repr, event.entities))}"
            asked[event.task_id] = (what, EntityId.of(event.entities[0]).instance_id, at)
        elif isinstance(event, (history.TaskCompleted, history.TaskFailed)):
            asked.pop(event.task_id, None)
    return [
        Pending("entity", what, since=at, task_id=task_id, instance_id=instance_id)
        for task_id, (what, instance_id, at) in sorted(asked.items())
    ]


def _last_recorded(facts: InstanceFacts, event_type: str) -> datetime | None:
    return next((at for event, at in reversed(facts.history) if event.type == event_type), None)


def _names(nodes: tuple[str, ...]) -> str:
    return ", ".join(nodes)


def _at(moment: datetime | None) -> str:
    """A moment in a sentence people read (the JSON fields keep ISO 8601): 2026-12-06 05:49:32 UTC."""
    if moment is None:
        return "an unknown time"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
