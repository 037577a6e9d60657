"""The orchestrations and activities the conformance suite runs on real worker processes."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from durable_agents import (
    ActivityContext,
    DurableApp,
    EventTimeoutError,
    OrchestrationContext,
    RetryPolicy,
    TaskFailedError,
    current_activity,
)
from durable_agents.orchestrator import StartIfMissing

app = DurableApp("durable_agents_tests")

#: Activities that must show an effect exactly once record their idempotency keys here.
EFFECTS_DIR = Path(os.environ.get("DA_TEST_EFFECTS_DIR", "/tmp/durable-agents-effects"))


# -- activities -------------------------------------------------------------------------------


@app.activity
def hello(name: str) -> str:
    return f"Hello, {name}!"


@app.activity
def add_one(value: int) -> int:
    return value + 1


@app.activity
def echo(value: Any) -> Any:
    return value


@app.activity
def square(value: int) -> int:
    return value * value


@app.activity
def fail_on(value: int) -> int:
    if value == 13:
        raise ValueError(f"unlucky number {value}")
    return value


@app.activity
def boom(message: str) -> None:
    raise RuntimeError(message)


@app.activity
async def async_double(value: int) -> int:
    return value * 2


@app.activity
def flaky(context: ActivityContext, succeed_on_attempt: int) -> int:
    """Fails until its retry-policy attempt number (counted by files per instance) reaches the target."""
    marker = EFFECTS_DIR / f"flaky-{context.instance_id}"
    marker.parent.mkdir(parents=True, exist_ok=True)
    with marker.open("a") as f:
        f.write("x")
    attempts = len(marker.read_text())
    if attempts < succeed_on_attempt:
        raise ConnectionError(f"transient failure on attempt {attempts}")
    return attempts


@app.activity
def record_effect(label: str) -> str:
    """Appends its idempotency key to a file only if that key is not there yet (an idempotent effect),
    and also logs every execution start, so a test can tell runs from effects."""
    context = current_activity()
    EFFECTS_DIR.mkdir(parents=True, exist_ok=True)
    (EFFECTS_DIR / f"runs-{label}").open("a").write(f"{os.getpid()}\n")
    gate = EFFECTS_DIR / f"gate-{label}"
    while not gate.exists():  # the crash test opens the gate after it has killed the first worker
        time.sleep(0.05)
    effects = EFFECTS_DIR / f"effects-{label}"
    seen = effects.read_text().splitlines() if effects.exists() else []
    if context.idempotency_key not in seen:
        with effects.open("a") as f:
            f.write(context.idempotency_key + "\n")
    return context.idempotency_key


class Order(BaseModel):
    item: str
    quantity: int


@dataclass
class Receipt:
    item: str
    total: float


@app.activity
def price_order(order: Order) -> Receipt:
    return Receipt(item=order.item, total=order.quantity * 2.5)


# -- orchestrations ---------------------------------------------------------------------------


@app.orchestration
def empty(context: OrchestrationContext) -> Any:
    return None
    yield  # a generator that finishes at once


@app.orchestration
def plain_function(context: OrchestrationContext) -> Any:
    return {"echo": context.get_input()}


@app.orchestration
def sequence(context: OrchestrationContext) -> Any:
    greetings = []
    for city in ["Tokyo", "Seattle", "London"]:
        greetings.append((yield context.call_activity(hello, input=city)))
    doubled = yield context.call_activity(async_double, input=21)
    return {"greetings": greetings, "doubled": doubled}


@app.orchestration
def chain(context: OrchestrationContext) -> Any:
    value = context.get_input() or 0
    for _ in range(10):
        value = yield context.call_activity(add_one, input=value)
    return value


@app.orchestration
def typed(context: OrchestrationContext) -> Any:
    receipt = yield context.call_activity(price_order, input=Order(item="tea", quantity=4))
    assert isinstance(receipt, Receipt), type(receipt)
    return {"item": receipt.item, "total": receipt.total}


@app.orchestration
def catch_failure(context: OrchestrationContext) -> Any:
    try:
        yield context.call_activity(boom, input="kaput")
    except TaskFailedError as error:
        return {
            "caught": str(error),
            "type": error.details.error_type,
            "message": error.details.message,
            "has_traceback": "Traceback" in (error.details.stack_trace or ""),
        }
    return "not reached"


@app.orchestration
def uncaught_failure(context: OrchestrationContext) -> Any:
    yield context.call_activity(boom, input="nobody catches this")


@app.orchestration
def with_retries(context: OrchestrationContext) -> Any:
    policy = RetryPolicy(
        first_retry_interval=timedelta(milliseconds=200),
        backoff_coefficient=2.0,
        max_number_of_attempts=context.get_input()["max_attempts"],
    )
    attempts = yield context.call_activity(flaky, input=context.get_input()["succeed_on"], retry_policy=policy)
    return attempts


@app.orchestration
def fan_out(context: OrchestrationContext) -> Any:
    count = context.get_input()
    results = yield [context.call_activity(square, input=i) for i in range(count)]
    return sum(results)


@app.activity
def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@app.orchestration
def staged_fan_out(context: OrchestrationContext) -> Any:
    """One step, four slow activities in parallel, a timer, one more step: a timeline with overlapping bars."""
    naps = yield context.call_activity(echo, input=[0.4] * 4)
    slept = yield [context.call_activity(nap, input=seconds) for seconds in naps]
    yield context.create_timer(timedelta(milliseconds=300))
    return (yield context.call_activity(echo, input=sum(slept)))


@app.orchestration
def uneven_fan_out(context: OrchestrationContext) -> Any:
    """Four activities at once, each running for a different time."""
    return (yield [context.call_activity(nap, input=seconds) for seconds in (0.05, 0.15, 0.3, 0.6)])


@app.orchestration
def fan_out_one_fails(context: OrchestrationContext) -> Any:
    tasks = [context.call_activity(fail_on, input=i) for i in range(context.get_input())]
    try:
        yield context.task_all(tasks)
    except TaskFailedError as error:
        return {"error": error.details.message, "failed": [t.task_id for t in tasks if t.is_failed]}
    return "not reached"


@app.orchestration
def approval(context: OrchestrationContext) -> Any:
    """The human-in-the-loop shape: an event races a timer."""
    seconds = context.get_input()["timeout_seconds"]
    approval_event = context.wait_for_external_event("approval_received")
    timeout_event = context.create_timer(context.current_utc_datetime + timedelta(seconds=seconds))
    winner = yield context.task_any([approval_event, timeout_event])
    if winner == approval_event:
        return {"status": "approved", "data": approval_event.result}
    return {"status": "escalated"}


@app.orchestration
def approval_with_wait_timeout(context: OrchestrationContext) -> Any:
    """The reference's exact HITL shape: the event carries its own timeout *and* races a timer."""
    approval_event = context.wait_for_external_event("approval_received", timeout=timedelta(seconds=1))
    timeout_event = context.create_timer(context.current_utc_datetime + timedelta(seconds=1))
    winner = yield context.task_any([approval_event, timeout_event])
    if winner == approval_event:
        return {"status": "approved", "data": approval_event.result}
    return {"status": "escalated"}


@app.orchestration
def event_timeout(context: OrchestrationContext) -> Any:
    try:
        yield context.wait_for_external_event("never", timeout=timedelta(milliseconds=300))
    except EventTimeoutError as error:
        return f"timed out: {error}"
    return "not reached"


@app.orchestration
def collect_events(context: OrchestrationContext) -> Any:
    """Waits (after a first step) for three events of one name; they may have arrived earlier."""
    yield context.call_activity(add_one, input=0)
    received = []
    for _ in range(3):
        received.append((yield context.wait_for_external_event("item")))
    return received


@app.orchestration
def sleeper(context: OrchestrationContext) -> Any:
    started = context.current_utc_datetime
    yield context.create_timer(timedelta(milliseconds=500))
    return (context.current_utc_datetime - started).total_seconds()


@app.orchestration
def child(context: OrchestrationContext) -> Any:
    value = context.get_input()
    doubled = yield context.call_activity(async_double, input=value)
    return doubled


@app.orchestration
def parent(context: OrchestrationContext) -> Any:
    single = yield context.call_sub_orchestrator(child, input=5)
    many = yield [context.call_sub_orchestrator(child, input=i) for i in range(5)]
    return {"single": single, "many": many}


@app.orchestration
def failing_child_parent(context: OrchestrationContext) -> Any:
    try:
        yield context.call_sub_orchestrator(uncaught_failure)
    except TaskFailedError as error:
        return {"caught": error.details.message}
    return "not reached"


@app.orchestration
def long_waiter(context: OrchestrationContext) -> Any:
    yield context.wait_for_external_event("never")


@app.orchestration
def parent_of_waiters(context: OrchestrationContext) -> Any:
    yield [context.call_sub_orchestrator(long_waiter) for _ in range(2)]


@app.orchestration
def approval_cancelling_the_loser(context: OrchestrationContext) -> Any:
    """The reference's human-in-the-loop race; the loser is cancelled, then the same event is awaited again."""
    approval = context.wait_for_external_event("approval_received")
    timeout = context.create_timer(context.current_utc_datetime + timedelta(seconds=context.get_input()))
    winner = yield context.task_any([approval, timeout])
    if winner == approval:
        timeout.cancel()
    else:
        approval.cancel()
    again = yield context.wait_for_external_event("approval_received")
    return {"first": approval.result if winner == approval else "timed out", "again": again}


@app.orchestration
def approve_or_reject(context: OrchestrationContext) -> Any:
    """Competing events: the loser's wait is cancelled, so a later wait of its name gets the next event."""
    approve = context.wait_for_external_event("approve")
    reject = context.wait_for_external_event("reject")
    winner = yield context.task_any([approve, reject])
    (reject if winner == approve else approve).cancel()
    later = yield context.wait_for_external_event("reject")
    return {"winner": winner.name, "later": later}


@app.orchestration
def cancels_its_child(context: OrchestrationContext) -> Any:
    """A sub-orchestration that loses a race with a timer is cancelled: it is terminated."""
    child = context.call_sub_orchestrator(long_waiter)
    winner = yield context.task_any([child, context.create_timer(timedelta(seconds=0.2))])
    child.cancel()
    return {"child": child.instance_id, "child_won": winner == child}


@app.orchestration
def boom_with_retries(context: OrchestrationContext) -> Any:
    policy = RetryPolicy(first_retry_interval=timedelta(milliseconds=50), max_number_of_attempts=2)
    yield context.call_activity(boom, input="Kah-BOOOOM!!!", retry_policy=policy)


@app.orchestration
def parent_of_boom(context: OrchestrationContext) -> Any:
    """Nobody catches the grandchild activity's failure: the parent's failure says which tasks it went through."""
    yield context.call_sub_orchestrator(boom_with_retries, instance_id=f"{context.instance_id}-child")


@app.orchestration
def tagged_parent(context: OrchestrationContext) -> Any:
    """Tags on a sub-orchestration (they go on the child instance) and on an activity call (in the history)."""
    team = context.get_input()
    yield context.call_activity(hello, input="tags", tags={"step": "greet"})
    result = yield context.call_sub_orchestrator(
        plain_function, input=1, instance_id=f"{context.instance_id}-child", tags={"team": team, "kind": "child"}
    )
    return result


@app.orchestration
def suspendable(context: OrchestrationContext) -> Any:
    first = yield context.wait_for_external_event("go")
    value = yield context.call_activity(add_one, input=first)
    return value


@app.orchestration
def counter(context: OrchestrationContext) -> Any:
    """Continues as new until the count reaches the target; history stays short."""
    state = context.get_input()
    state["count"] += 1
    context.set_custom_status({"count": state["count"]})
    if state["count"] < state["target"]:
        yield context.call_activity(add_one, input=state["count"])
        context.continue_as_new(state)
        return None
    return state["count"]


@app.orchestration
def custom_status(context: OrchestrationContext) -> Any:
    context.set_custom_status({"stage": "waiting"})
    data = yield context.wait_for_external_event("proceed")
    context.set_custom_status({"stage": "done", "data": data})
    return "finished"


@app.orchestration
def determinism(context: OrchestrationContext) -> Any:
    """Hands its uuid and time to activities (so history records them) and returns them at the end,
    after any number of replays."""
    first_uuid = context.new_uuid()
    first_time = context.current_utc_datetime.isoformat()
    replaying_flags = [context.is_replaying]
    yield context.call_activity(echo, input={"uuid": first_uuid, "time": first_time})
    replaying_flags.append(context.is_replaying)
    second_uuid = context.new_uuid()
    yield context.call_activity(echo, input={"uuid": second_uuid})
    return {"uuids": [first_uuid, second_uuid], "first_time": first_time, "replaying_flags": replaying_flags}


@app.orchestration
def crash_target(context: OrchestrationContext) -> Any:
    key = yield context.call_activity(record_effect, input=context.get_input())
    return key


@app.orchestration
def crash_fan_out(context: OrchestrationContext) -> Any:
    label = context.get_input()
    return (yield [context.call_activity(record_effect, input=f"{label}-{i}") for i in range(4)])


@app.orchestration
def yields_garbage(context: OrchestrationContext) -> Any:
    yield 42


@app.orchestration
def calls_unknown_activity(context: OrchestrationContext) -> Any:
    yield context.call_activity("no_such_activity", input=1)


@app.orchestration
def unserialisable_activity_input(context: OrchestrationContext) -> Any:
    yield context.call_activity(hello, input=object())


@app.orchestration
def deploy_sensitive(context: OrchestrationContext) -> Any:
    """Version 2 of this code (a worker started with DA_TEST_CODE_VERSION=2) schedules another activity."""
    if os.environ.get("DA_TEST_CODE_VERSION") == "2":
        yield context.call_activity(square, input=3)
    else:
        yield context.call_activity(add_one, input=3)
    yield context.wait_for_external_event("continue")
    return "done"


@app.orchestration
def long_timer(context: OrchestrationContext) -> Any:
    yield context.create_timer(timedelta(days=3))
    return context.current_utc_datetime.isoformat()


@app.orchestration
def notifier(context: OrchestrationContext) -> Any:
    """Signals another instance, starting it if needed, then waits for its answer."""
    target = context.get_input()
    context.send_event(target, "item", "ping", start=StartIfMissing("echo_back", context.instance_id))
    answer = yield context.wait_for_external_event("answer")
    return answer


@app.orchestration
def echo_back(context: OrchestrationContext) -> Any:
    item = yield context.wait_for_external_event("item")
    context.send_event(context.get_input(), "answer", f"{item} -> pong")
    return item


@app.orchestration
def mixed_fan_out(context: OrchestrationContext) -> Any:
    """Alternating activities in one fan-out: each work item must be dispatched under its own name."""
    count = context.get_input()
    calls = [context.call_activity(square if i % 2 else add_one, input=i) for i in range(count)]
    return sum((yield calls))


@app.orchestration
def schedules_and_returns(context: OrchestrationContext) -> Any:
    context.call_activity(echo, input="never awaited")
    return "done"


# -- in-step activities (Registry.add_activity(..., in_step=True)) -----------------------------


def write_note(session: Any, note: dict[str, Any]) -> str:
    """Writes a row through the step's own session; then fails if asked, which must undo the row."""
    from durable_agents.models import AgentSessionRow
    from durable_agents.store import dialect

    session.execute(
        dialect.of(session)
        .insert(AgentSessionRow)
        .values(
            taskhub=note["hub"],
            agent="notes",
            session_key=note["key"],
            message_count=0,
            turn_count=0,
            prompt_tokens=0,
            completion_tokens=0,
        )
    )
    if note.get("fail"):
        raise ValueError(f"note {note['key']} refused")
    return note["key"]


app.registry.add_activity(write_note, "write_note", in_step=True)


@app.orchestration
def notes_then_activity(context: OrchestrationContext) -> Any:
    hub = context.get_input()
    kept = yield context.call_activity("write_note", input={"hub": hub, "key": "kept"})
    try:
        yield context.call_activity("write_note", input={"hub": hub, "key": "undone", "fail": True})
        refused = "not refused"
    except TaskFailedError as error:
        refused = error.details.message
    after = yield context.call_activity(add_one, input=1)
    return [kept, refused, after]


@app.orchestration
def many_notes(context: OrchestrationContext) -> Any:
    hub, count = context.get_input()
    notes = []
    for i in range(count):
        notes.append((yield context.call_activity("write_note", input={"hub": hub, "key": f"n{i}"})))
    return notes


import entity_workflows  # noqa: E402, F401  (registers its entities and orchestrations on `app`)
