"""The entities the tests' worker hosts (registered on `workflows.app`), and orchestrations that use them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from durable_agents import OrchestrationContext

from workflows import app


@app.entity
class Account:
    """A balance that never goes below zero."""

    state = 0

    def deposit(self, amount: int) -> int:
        self.state += amount
        return self.state

    def withdraw(self, amount: int) -> int:
        if amount > self.state:
            raise ValueError(f"balance {self.state} is less than {amount}")
        self.state -= amount
        return self.state

    def balance(self) -> int:
        return int(self.state)


@app.entity
def counter(state: Any, operation: str, input: Any) -> Any:
    if operation == "add":
        return (state or 0) + input
    if operation == "get":
        return state or 0
    raise ValueError(f"counter has no operation {operation!r}")


@app.orchestration
def signal_counter(context: OrchestrationContext) -> int:
    """Signal `count` additions of 1 to the counter `entity`."""
    entity, count = context.get_input()
    for _ in range(count):
        context.signal_entity(entity, "add", 1)
    return int(count)


@app.orchestration
def call_counter(context: OrchestrationContext) -> Any:
    """Add 1 to the counter `entity` `count` times, each a call that waits for the new value."""
    entity, count = context.get_input()
    seen = []
    for _ in range(count):
        seen.append((yield context.call_entity(entity, "add", 1)))
    return seen


@app.orchestration
def transfer(context: OrchestrationContext) -> Any:
    """Move `amount` between two accounts inside a critical section; False if the source lacks it."""
    source, target, amount = context.get_input()
    with (yield context.lock_entities(target, source)):
        balance = yield context.call_entity(source, "balance")
        if balance < amount:
            return False
        yield context.call_entity(source, "withdraw", amount)
        yield context.call_entity(target, "deposit", amount)
    return True


@app.orchestration
def entity_misuse(context: OrchestrationContext) -> Any:
    """What the errors of entities look like to an orchestration."""
    source, other = context.get_input()
    outcomes = []
    try:
        yield context.call_entity(source, "withdraw", 10**9)
    except Exception as error:
        outcomes.append(str(error))
    try:
        yield context.call_entity("nosuch@x", "go")
    except Exception as error:
        outcomes.append(str(error))
    with (yield context.lock_entities(source)):
        try:
            yield context.call_entity(other, "balance")
        except Exception as error:
            outcomes.append(f"{type(error).__name__}: {error}")
    return outcomes


@app.orchestration
def hold_lock(context: OrchestrationContext) -> Any:
    """Lock an entity and wait for an event inside the critical section."""
    with (yield context.lock_entities(context.get_input())):
        yield context.wait_for_external_event("go")
    return "released"


@app.orchestration
def lock_or_give_up(context: OrchestrationContext) -> Any:
    """Race a lock against a one-second timer, and end either way."""
    lock = context.lock_entities(*context.get_input())
    winner = yield context.task_any([lock, context.create_timer(timedelta(seconds=1))])
    return "locked" if winner is lock else "gave up"
