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
