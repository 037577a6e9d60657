"""An app whose Celery settings are the user's, with an activity on a queue of its own and one that logs."""

from __future__ import annotations

import logging
import os
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from durable_agents import DurableApp, OrchestrationContext

#: The user's prefetch multiplier: the engine's default is 1.
PREFETCH_MULTIPLIER = 3
#: A trace id the logging activity runs under, as a propagated trace context would set it.
TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736

app = DurableApp("durable_agents_routing", worker_prefetch_multiplier=PREFETCH_MULTIPLIER)
log = logging.getLogger("durable_agents.tests.routing")


@app.activity(queue="gpu", priority=0)
def on_gpu(value: int) -> dict[str, Any]:
    return {"value": value, "pid": os.getpid()}


@app.orchestration
def use_gpu(context: OrchestrationContext) -> Any:
    return (yield context.call_activity(on_gpu, input=context.get_input()))


@app.activity
def where(value: int) -> dict[str, Any]:
    return {"value": value, "pid": os.getpid()}


@app.orchestration(queue="gpu")
def gpu_pipeline(context: OrchestrationContext) -> Any:
    """Its steps go to the gpu queue; its activity to the activities queue."""
    return (yield context.call_activity(where, input=context.get_input()))


@app.activity(rate_limit="100/s")
def limited(value: int) -> int:
    return value * 2


@app.activity
def logged(message: str) -> str:
    log.warning("outside any span: %s", message)
    span = NonRecordingSpan(SpanContext(TRACE_ID, 0x00F067AA0BA902B7, is_remote=True, trace_flags=TraceFlags(1)))
    with trace.use_span(span):
        log.warning("inside a span: %s", message)
    return message


@app.orchestration
def log_and_limit(context: OrchestrationContext) -> Any:
    said = yield context.call_activity(logged, input=context.get_input())
    doubled = yield [context.call_activity(limited, input=i) for i in range(3)]
    return [said, doubled]
