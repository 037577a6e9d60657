"""The durable app the benchmarks' workers serve: no-op activities and the workload orchestrations."""

from __future__ import annotations

import os
import time
from typing import Any

from durable_agents import DurableApp, OpenAIChatClient, OrchestrationContext

chat = OpenAIChatClient(model="bench", api_key="bench", base_url=os.environ.get("MODEL_SERVER_URL"))
app = DurableApp("bench", agents=[chat.as_agent(name="Benchy", instructions="Answer briefly.")])


@app.activity
def noop(value: int) -> int:
    return value


@app.activity
def slow(seconds: float) -> float:
    time.sleep(seconds)  # the work a worker is killed in the middle of
    return seconds


@app.orchestration
def chain(context: OrchestrationContext) -> Any:
    value = 0
    for _ in range(context.get_input()):
        value = yield context.call_activity(noop, input=value + 1)
    return value


@app.orchestration
def fan_out(context: OrchestrationContext) -> Any:
    results = yield [context.call_activity(noop, input=i) for i in range(context.get_input())]
    return sum(results)


@app.orchestration
def waiter(context: OrchestrationContext) -> Any:
    data = yield context.wait_for_external_event("go")
    return data


@app.orchestration
def slow_one(context: OrchestrationContext) -> Any:
    return (yield context.call_activity(slow, input=context.get_input()))


# -- entities (the `entities` workload) -------------------------------------------------------


@app.entity
def counter(state: Any, operation: str, input: Any) -> Any:
    return (state or 0) + input


@app.entity
class Account:
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


@app.orchestration
def signal_counter(context: OrchestrationContext) -> Any:
    entity, count = context.get_input()
    for _ in range(count):
        context.signal_entity(entity, "add", 1)
    return count


@app.orchestration
def transfer(context: OrchestrationContext) -> Any:
    source, target, amount = context.get_input()
    with (yield context.lock_entities(source, target)):
        if (yield context.call_entity(source, "balance")) < amount:
            return False
        yield context.call_entity(source, "withdraw", amount)
        yield context.call_entity(target, "deposit", amount)
    return True


@app.orchestration
def three_activities(context: OrchestrationContext) -> Any:
    """A transfer's awaited round trips as activities, without its lock: the entities' baseline."""
    for value in range(3):
        yield context.call_activity(noop, input=value)
    return True
