"""The app of the fault benchmark: a mix of orchestrations whose activities leave effects keyed by their
idempotency key, so a run can count effects missing and re-executions after crashes."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import psycopg

from durable_agents import ActivityContext, DurableApp, OrchestrationContext, RetryPolicy

app = DurableApp("faults")
#: Activities may meet the database outage the run causes: they are retried, as production code would be.
PATIENT = RetryPolicy(first_retry_interval=timedelta(seconds=1), max_number_of_attempts=20)
EFFECTS_URL = os.environ.get("FAULTS_EFFECTS_URL", "")


@app.activity
def effect(context: ActivityContext, value: int) -> int:
    """An idempotent effect: one row per idempotency key, its `runs` counting every execution."""
    with psycopg.connect(EFFECTS_URL, autocommit=True, connect_timeout=3) as connection:
        connection.execute(
            "INSERT INTO faults_effects (key, runs) VALUES (%s, 1) "
            "ON CONFLICT (key) DO UPDATE SET runs = faults_effects.runs + 1",
            (context.idempotency_key,),
        )
    return value + 1


@app.orchestration
def chain(context: OrchestrationContext) -> Any:
    value = context.get_input()
    for _ in range(3):
        value = yield context.call_activity(effect, input=value, retry_policy=PATIENT)
    return value


@app.orchestration
def fan_out(context: OrchestrationContext) -> Any:
    results = yield [context.call_activity(effect, input=i, retry_policy=PATIENT) for i in range(10)]
    return sum(results)


@app.orchestration
def timer(context: OrchestrationContext) -> Any:
    yield context.create_timer(timedelta(seconds=2))
    return (yield context.call_activity(effect, input=context.get_input(), retry_policy=PATIENT))


@app.orchestration
def event(context: OrchestrationContext) -> Any:
    data = yield context.wait_for_external_event("go")
    return (yield context.call_activity(effect, input=data, retry_policy=PATIENT))


@app.orchestration
def parent(context: OrchestrationContext) -> Any:
    return (yield context.call_sub_orchestrator(chain, input=context.get_input()))


#: Each kind, its input for instance n, and its exact output.
KINDS: dict[str, tuple[Any, Any]] = {
    "chain": (lambda n: n, lambda n: n + 3),
    "fan_out": (lambda n: None, lambda n: sum(range(1, 11))),
    "timer": (lambda n: n, lambda n: n + 1),
    "event": (lambda n: None, lambda n: n + 1),  # raised with data n
    "parent": (lambda n: n, lambda n: n + 3),
}
#: Activity calls each kind makes: the effects a run must find.
EFFECTS = {"chain": 3, "fan_out": 10, "timer": 1, "event": 1, "parent": 3}
