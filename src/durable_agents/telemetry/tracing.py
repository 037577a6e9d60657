"""Spans on the OpenTelemetry API: the API's no-op tracer until an SDK is configured, so this costs nothing
measurable then. One trace per instance: its `traceparent` is stored with it and parents every step."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = [
    "TRACEPARENT",
    "SpanKind",
    "context_of",
    "current_traceparent",
    "failed",
    "span",
    "tracing_on",
]

#: The W3C Trace Context header, in Celery message headers and in `da_instances.trace_parent`.
TRACEPARENT = "traceparent"

_tracer = trace.get_tracer("durable_agents")
_propagator = TraceContextTextMapPropagator()
_tracing = False


def current_traceparent(span: Span | None = None) -> str | None:
    """`span`'s (by default the current span's) W3C traceparent; None when nothing records."""
    if not tracing_on():
        return None
    context = (span or trace.get_current_span()).get_span_context()
    if not context.is_valid:
        return None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, trace.set_span_in_context(span) if span is not None else None)
    return carrier.get(TRACEPARENT)


def context_of(traceparent: str | None) -> Context | None:
    """The context a stored or received traceparent stands for; None (no parent) for None."""
    if not traceparent or not tracing_on():
        return None
    return _propagator.extract({TRACEPARENT: traceparent})


@contextmanager
def span(
    name: str,
    attributes: Mapping[str, Any],
    *,
    parent: Context | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
) -> Iterator[Span]:
    """A current span under `parent` (the current context when None); an exception marks it failed."""
    if not tracing_on():
        yield INVALID_SPAN  # not even the API's no-op span and its context switch
        return
    with _tracer.start_as_current_span(
        name, context=parent, kind=kind, attributes=attributes, record_exception=True, set_status_on_exception=True
    ) as current:
        yield current


def failed(current: Span, description: str) -> None:
    """Mark a span failed without an exception escaping it (an activity whose failure is its outcome)."""
    current.set_status(Status(StatusCode.ERROR, description))


def tracing_on() -> bool:
    """Whether a tracer provider is installed (the API's default forwards to none: every span is a no-op).
    Once installed, a provider stays: the API refuses to replace it."""
    global _tracing
    if not _tracing:
        _tracing = not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    return _tracing
