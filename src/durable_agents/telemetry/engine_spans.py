"""The engine's spans, handed to the SDK's span processors without the SDK span's bookkeeping.

A chain step opens two spans (its step's, its activity's). The SDK's `Tracer.start_span` and `Span.end` cost
about 17 µs of a hot loop's CPU for one, two to three times that in a worker: most of what tracing added to a
step. An `EngineSpan` is the same span for every processor and exporter (a `ReadableSpan`, the same sampler
decision, ids, limits and events) made and ended in half the time: attributes that need no cleaning (a
string, int, float or bool under a string key) go into a plain dict; anything else, and any limit reached,
takes the SDK's own `BoundedAttributes`. Imported only where the SDK is installed."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from time import time_ns
from types import TracebackType
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util import types

__all__ = ["EngineSpan", "EngineTracer"]

log = logging.getLogger(__name__)

#: Attribute values the SDK keeps exactly as given (strings only cut to a length limit, when one is set).
_PLAIN = (str, int, float, bool)
#: W3C Trace Context level 2's flag, in the API versions that have it (the SDK then sets it as done here).
_RANDOM_TRACE_ID = int(getattr(TraceFlags, "RANDOM_TRACE_ID", 0))


class EngineTracer(trace_api.Tracer):
    """A tracer for the engine's spans on a provider whose processors and limits are known (given to it
    when it was made): `processor` sees each span start and end, as it does the SDK's. A call this does not
    cover (links, an explicit start time, exceptions left unrecorded) goes to the SDK's own tracer."""

    def __init__(self, provider: TracerProvider, processor: SpanProcessor, limits: SpanLimits, name: str) -> None:
        self._provider = provider
        self._processor = processor
        self._bounds = _Bounds(limits)
        self._sdk = provider.get_tracer(name)
        self._scope = InstrumentationScope(name, "")
        self._ids = provider.id_generator
        random_ids = getattr(self._ids, "is_trace_id_random", None)
        self._random_ids = bool(random_ids()) if callable(random_ids) else False

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace_api.Span:
        if links or start_time is not None or not record_exception or not set_status_on_exception:
            return self._sdk.start_span(
                name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception
            )
        parent: SpanContext | None = trace_api.get_current_span(context).get_span_context()
        if parent is None or not parent.is_valid:
            parent = None
            trace_id = self._ids.generate_trace_id()
        else:
            trace_id = parent.trace_id
        # The provider's sampler, as the SDK asks it: it may add attributes and change the trace state.
        sampling = self._provider.sampler.should_sample(context, trace_id, name, kind, attributes, None)
        flags = TraceFlags.SAMPLED if sampling.decision is Decision.RECORD_AND_SAMPLE else TraceFlags.DEFAULT
        if parent.trace_flags & _RANDOM_TRACE_ID if parent is not None else self._random_ids:
            flags |= _RANDOM_TRACE_ID
        span_context = SpanContext(
            trace_id, self._ids.generate_span_id(), False, TraceFlags(flags), sampling.trace_state
        )
        if sampling.decision is Decision.DROP:
            return trace_api.NonRecordingSpan(span_context)
        span = EngineSpan(
            name, span_context, parent, kind, sampling.attributes, self._provider.resource, self._scope,
            self._bounds, self._processor,
        )  # fmt: skip
        self._processor.on_start(span, parent_context=context)  # type: ignore[arg-type]
        return span

    # The API declares its own (private) context manager class as the return type: any one does.
    @contextmanager
    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[trace_api.Span]:
        started = self.start_span(
            name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception
        )
        with trace_api.use_span(started, end_on_exit, record_exception, set_status_on_exception) as current:
            yield current


class EngineSpan(ReadableSpan, trace_api.Span):
    """A recording span that is its own finished, readable form: ended, it goes to the processors as it is
    (the SDK copies its span into a `ReadableSpan` first). Changed only until it ends, as the SDK's; without
    the SDK span's lock, as the thread running a step or an activity opens and ends its span (an attribute
    another thread sets is one dict item, set atomically)."""

    def __init__(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: types.Attributes,
        resource: Any,
        scope: InstrumentationScope,
        bounds: _Bounds,
        processor: SpanProcessor,
    ) -> None:
        # Through ReadableSpan's own constructor, so that a field a later SDK adds there is set too.
        super().__init__(
            name, context, parent, resource, bounds.plain(attributes), kind=kind, instrumentation_scope=scope,
            start_time=time_ns(),
        )  # fmt: skip
        self._bounds = bounds
        self._processor = processor

    def __repr__(self) -> str:
        return f'{type(self).__name__}(name="{self._name}", context={self._context})'

    def get_span_context(self) -> SpanContext:
        return self._context  # type: ignore[return-value] # always set here, unlike a ReadableSpan's

    def is_recording(self) -> bool:
        return self._end_time is None

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        if self._ended("set_attribute"):
            return
        attributes = self._attributes
        bounds = self._bounds
        if (
            type(attributes) is dict
            and bounds.keeps(key, value)
            and (key in attributes or len(attributes) < bounds.most)  # with room for it
        ):
            if key in attributes:
                del attributes[key]  # a key set again moves last, as in BoundedAttributes (which drops the first)
            attributes[key] = value
        else:
            self._bounded()[key] = value

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def add_event(self, name: str, attributes: types.Attributes = None, timestamp: int | None = None) -> None:
        if self._ended("add_event"):
            return
        limits = self._bounds.limits
        cleaned = BoundedAttributes(
            limits.max_event_attributes, attributes, immutable=True, max_value_len=limits.max_attribute_length
        )
        if not isinstance(self._events, BoundedList):
            self._events = BoundedList(limits.max_events)
        self._events.append(Event(name, cleaned, timestamp))

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        if self._ended("add_link"):
            return
        if not (context and (context.is_valid or attributes or context.trace_state)):
            return  # as the SDK: an invalid context is a link only with something to say
        limits = self._bounds.limits
        cleaned = BoundedAttributes(
            limits.max_link_attributes, attributes, immutable=True, max_value_len=limits.max_attribute_length
        )
        if not isinstance(self._links, BoundedList):
            self._links = BoundedList(limits.max_links)
        self._links.append(Link(context, cleaned))

    def update_name(self, name: str) -> None:
        if not self._ended("update_name"):
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self._ended("set_status"):
            return
        # As the SDK: OK is final, UNSET changes nothing, a description comes with an ERROR code only.
        if self._status.status_code is StatusCode.OK:
            return
        if isinstance(status, Status):
            if status.status_code is StatusCode.UNSET:
                return
            if description is not None:
                log.warning("Description %s ignored. Use either `Status` or `(StatusCode, Description)`", description)
            self._status = status
        elif status is not StatusCode.UNSET:
            self._status = Status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        module, qualname = type(exception).__module__, type(exception).__qualname__
        recorded: dict[str, Any] = {
            "exception.type": f"{module}.{qualname}" if module and module != "builtins" else qualname,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        if attributes:
            recorded.update(attributes)
        self.add_event("exception", recorded, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self._end_time is not None:
            log.warning("Calling end() on an ended span.")
            return
        self._end_time = end_time if end_time is not None else time_ns()
        self._processor.on_end(self)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if error is not None and self.is_recording():
            self.record_exception(error, escaped=True)
            self.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        super().__exit__(kind, error, traceback)

    def _ended(self, method: str) -> bool:
        if self._end_time is None:
            return False
        log.warning("Tried calling %s on an ended span.", method)
        return True

    def _bounded(self) -> BoundedAttributes:
        """The attributes as the SDK keeps them, from the first value or limit the plain dict does not cover."""
        if not isinstance(self._attributes, BoundedAttributes):
            self._attributes = self._bounds.bounded(self._attributes)
        return self._attributes


class _Bounds:
    """The span limits, with the two the plain dict checks on every attribute ready to compare."""

    __slots__ = ("limits", "longest", "most")

    def __init__(self, limits: SpanLimits) -> None:
        self.limits = limits
        self.most = _at_most(limits.max_span_attributes)
        self.longest = _at_most(limits.max_span_attribute_length)

    def keeps(self, key: object, value: object) -> bool:
        """Whether the SDK would keep `value` under `key` exactly as given (a key it accepts, a value it does
        not clean or cut)."""
        return (
            type(key) is str
            and key != ""
            and type(value) in _PLAIN
            and (type(value) is not str or len(value) <= self.longest)
        )

    def plain(self, attributes: types.Attributes) -> dict[str, Any] | BoundedAttributes:
        """`attributes` in a plain dict when the SDK would keep each as it is; else in its BoundedAttributes."""
        if not attributes:
            return {}
        if len(attributes) <= self.most and all(self.keeps(key, value) for key, value in attributes.items()):
            return dict(attributes)
        return self.bounded(attributes)

    def bounded(self, attributes: types.Attributes) -> BoundedAttributes:
        limits = self.limits
        return BoundedAttributes(
            limits.max_span_attributes, attributes, immutable=False, max_value_len=limits.max_span_attribute_length
        )


def _at_most(limit: int | None) -> float:
    return float("inf") if limit is None else limit
