"""The app `python -m bench.schedules` runs on its workers: one orchestration a schedule starts every second."""

from __future__ import annotations

from typing import Any

from durable_agents import DurableApp, OrchestrationContext

app = DurableApp("bench_schedules")


@app.orchestration
def tick(context: OrchestrationContext) -> Any:
    return context.get_input()
    yield  # a generator that finishes at once
