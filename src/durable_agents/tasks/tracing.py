"""Where an activity's span hangs: under the step that scheduled it, as its message or its step says."""

from __future__ import annotations

from celery import current_task
from opentelemetry.context import Context

from ..store.db import single_statement
from ..store.instances import trace_parent_of
from ..telemetry.tracing import TRACEPARENT, context_of, tracing_on


def received_traceparent() -> str | None:
    """The traceparent header of the Celery message being run, if it came with one."""
    request = getattr(current_task, "request", None)
    value = request.get(TRACEPARENT) if request is not None else None
    return value if isinstance(value, str) else None


def activity_parent(database_url: str, taskhub: str, instance_id: str, traceparent: str | None) -> Context | None:
    """The context an activity's span starts in: the step that scheduled it (`traceparent`, from its
    message); for work the sweeper sent again, without one, the root of its instance's trace, read only
    while tracing is on."""
    if traceparent is None and tracing_on():
        with single_statement(database_url) as session:
            traceparent = trace_parent_of(session, taskhub, instance_id)
    return context_of(traceparent)
