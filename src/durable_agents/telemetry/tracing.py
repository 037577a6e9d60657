"""Spans on the OpenTelemetry API: the API's no-op tracer until an SDK is configured, so this costs nothing
measurable then. One trace per instance: its `traceparent` is stored with it and parents every step."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from types import TracebackType
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import (
    INVALID_SPAN,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    Tracer,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = [
    "TRACEPARENT",
    "TRACER_NAME",
    "SpanKind",
    "context_of",
    "current_traceparent",
    "failed",
    "install",
    "span",
    "tracing_on",
]

#: The instrumentation scope of every span the engine opens.
TRACER_NAME = "durable_agents"
#: The W3C Trace Context header, in Celery message headers and in `da_instances.trace_parent`.
TRACEPARENT = "traceparent"

_propagator = TraceContextTextMapPropagator()
#: A traceparent as this module writes it (version 00, no tracestate): parsed here in half the propagator's
#: time; anything else is the propagator's to parse (or refuse).
_OURS = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
#: The installed provider's own tracer, once there is one: asked through the API's proxy tracer instead,
#: every span would pay for one more layer of context managers.
_tracer: Tracer | None = None
#: The traceparent `current_traceparent` wrote last and the context of its span, so that reading it back in
#: this process needs no parsing (one tuple, replaced whole: safe between threads).
_last_written: tuple[str | None, Context | None] = (None, None)


def current_traceparent(span: Span | None = None) -> str | None:
    """`span`'s (by default the current span's) W3C traceparent; None when nothing records."""
    if not tracing_on():
        return None
    current = span or trace.get_current_span()
    context = current.get_span_context()
    if not context.is_valid:
        return None
    # The propagator's format, without its carrier and its second lookup of the current span.
    traceparent = f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
    global _last_written
    # Most often asked for next by this thread: a step's activity that the same worker runs right away.
    _last_written = (traceparent, trace.set_span_in_context(current))
    return traceparent


def context_of(traceparent: str | None) -> Context | None:
    """The context a stored or received traceparent stands for; None (no parent) for None."""
    if not traceparent or not tracing_on():
        return None
    written, context = _last_written
    return context if traceparent == written else _extracted(traceparent)


@lru_cache(maxsize=1024)
def _extracted(traceparent: str) -> Context:
    # Kept: every step of an instance parses its root's traceparent, every activity of a fan-out the step's.
    # A Context cannot be changed (it refuses assignment), so one may be shared.
    ours = _OURS.fullmatch(traceparent)
    if ours is None:
        return _propagator.extract({TRACEPARENT: traceparent})
    trace_id, span_id = int(ours[1], 16), int(ours[2], 16)
    if not trace_id or not span_id:  # all zeros: invalid, as the propagator says too
        return _propagator.extract({TRACEPARENT: traceparent})
    remote = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(int(ours[3], 16)))
    return trace.set_span_in_context(NonRecordingSpan(remote))


class _Scope:
    """A started span made current until the block ends; an exception escaping the block marks it failed
    (as the API's `start_as_current_span` would, with a class instead of three nested generators)."""

    __slots__ = ("_span", "_token")

    def __init__(self, current: Span) -> None:
        self._span = current
        self._token: object = None

    def __enter__(self) -> Span:
        self._token = context_api.attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        current = self._span
        context_api.detach(self._token)  # type: ignore[arg-type]
        # Only an Exception is a failure; GeneratorExit and the like are not (as in the API's `use_span`).
        if isinstance(error, Exception) and current.is_recording():
            current.record_exception(error)
            current.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        current.end()


class _Nothing:
    """The block's span while nothing records: not even the API's no-op span and its context switch."""

    __slots__ = ()

    def __enter__(self) -> Span:
        return INVALID_SPAN

    def __exit__(self, *exc: Any) -> None:
        return None


_NOTHING = _Nothing()


def span(
    name: str,
    attributes: Mapping[str, Any],
    *,
    parent: Context | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
) -> _Scope | _Nothing:
    """A current span under `parent` (the current context when None), for a `with` block; an exception
    escaping the block marks it failed."""
    if not tracing_on():
        return _NOTHING
    assert _tracer is not None
    return _Scope(_tracer.start_span(name, context=parent, kind=kind, attributes=attributes))


def failed(current: Span, description: str) -> None:
    """Mark a span failed without an exception escaping it (an activity whose failure is its outcome)."""
    current.set_status(Status(StatusCode.ERROR, description))


def tracing_on() -> bool:
    """Whether a tracer provider is installed (the API's default forwards to none: every span is a no-op).
    Once installed, a provider stays: the API refuses to replace it."""
    global _tracer
    if _tracer is None:
        provider = trace.get_tracer_provider()
        if isinstance(provider, trace.ProxyTracerProvider):
            return False
        _tracer = provider.get_tracer(TRACER_NAME)
    return True


def install(tracer: Tracer) -> None:
    """Open the engine's spans with `tracer` (`configure_tracing`'s own, on the provider it installed)."""
    global _tracer
    _tracer = tracer
