"""The app whose recorded histories `python -m bench.replay` replays: a chain of activities, then an approval."""

from __future__ import annotations

from typing import Any

from durable_agents import DurableApp, OrchestrationContext

app = DurableApp("bench_replay")


@app.activity
def add(value: int) -> int:
    return value + 1


@app.orchestration
def counter(context: OrchestrationContext) -> Any:
    steps, value = context.get_input(), 0
    for _ in range(steps):
        value = yield context.call_activity(add, input=value)
    approved = yield context.wait_for_external_event("approve")
    return value if approved else None
