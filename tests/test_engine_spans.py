"""The engine's spans are the SDK's spans to every processor and exporter: the same calls on an `EngineTracer`
and on the SDK's tracer of the same provider give the same OTLP message (ids and times aside), the same
processor calls and the same sampling; what the engine's tracer does not cover goes to the SDK's."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as official_encoding
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import (
    ReadableSpan,
    Span,
    SpanLimits,
    SpanProcessor,
    SynchronousMultiSpanProcessor,
    TracerProvider,
)
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from durable_agents.telemetry.engine_spans import EngineSpan, EngineTracer

REMOTE = SpanContext(
    0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, is_remote=True, trace_flags=TraceFlags(1),
    trace_state=TraceState([("vendor", "value")]),
)  # fmt: skip
UNSAMPLED = SpanContext(REMOTE.trace_id, REMOTE.span_id, is_remote=True, trace_flags=TraceFlags(0))


def _under(parent: SpanContext) -> Context:
    return trace.set_span_in_context(trace.NonRecordingSpan(parent))


class Watching(SpanProcessor):
    """What a processor sees: each start (and it writes an attribute then, as a baggage processor does)."""

    def __init__(self) -> None:
        self.started: list[tuple[str, bool, bool]] = []

    def on_start(self, span: Any, parent_context: Context | None = None) -> None:
        self.started.append((span.name, span.is_recording(), parent_context is not None))
        span.set_attribute("seen.at_start", True)


class Setup:
    """A provider as `configure_tracing` builds one: its processors and limits held, to give the engine's tracer."""

    def __init__(self, limits: SpanLimits, sampler: Sampler | None = None) -> None:
        self.memory = InMemorySpanExporter()
        self.watching = Watching()
        self.processors = SynchronousMultiSpanProcessor()
        resource = Resource({"service.name": "spans"})
        self.provider = TracerProvider(
            sampler=sampler, resource=resource, active_span_processor=self.processors, span_limits=limits
        )
        self.provider.add_span_processor(self.watching)
        self.provider.add_span_processor(SimpleSpanProcessor(self.memory))
        self.limits = limits

    def tracer(self, engine: bool) -> trace.Tracer:
        if engine:
            return EngineTracer(self.provider, self.processors, self.limits, "durable_agents")
        return self.provider.get_tracer("durable_agents")


def _everything(tracer: trace.Tracer) -> None:
    """Every call a span takes, including the ones that go past a limit or come too late."""
    with tracer.start_as_current_span("root", kind=SpanKind.SERVER, attributes={"a": 1, "b": "x" * 40}) as root:
        root.set_attribute("a", 2)  # set again: moves last
        root.set_attribute("list", [1, 2, 3])
        root.set_attributes({"f": 0.5, "yes": True, "": "no key", "nothing": None})  # type: ignore[dict-item]
        for number in range(10):
            root.set_attribute(f"n{number}", number)  # over 12 attributes: the first ones go
        root.set_attribute("long", "y" * 40)  # cut to 32
        root.add_event("checkpoint", {"step": 3, "text": "z" * 40}, timestamp=5)
        root.add_event("second", timestamp=6)
        root.add_event("over the limit", timestamp=7)  # max_events=2
        root.add_link(REMOTE, {"why": "caused by"})
        root.add_link(SpanContext(0, 0, False))  # invalid, nothing to say: not a link
        root.update_name("root renamed")
        root.set_status(Status(StatusCode.OK))
        root.set_status(StatusCode.ERROR, "too late: OK is final")
        with tracer.start_as_current_span("child", kind=SpanKind.CONSUMER) as child:
            child.set_status(StatusCode.ERROR, "as its outcome")
    root.set_attribute("after", "the end")  # ignored, as every change after the end
    root.add_event("after the end")
    root.end()  # a second end: ignored
    with pytest.raises(ValueError), tracer.start_as_current_span("fails", context=_under(REMOTE)):
        raise ValueError("no luck")
    span = tracer.start_span("with span", context=_under(REMOTE), attributes={"n": 1})
    with pytest.raises(KeyError), span:
        raise KeyError("missing")
    with tracer.start_span("plain", context=_under(REMOTE), attributes={"k": "v", "j": 1}) as plain:
        plain.set_attribute("k", "again")  # moves last
        plain.set_attribute("cut", "z" * 40)  # cut to 32, the span's other attributes plain as they were
    tracer.start_span("cut at the start", attributes={"long": "q" * 40, "short": "q"}).end()
    tracer.start_span("bounded from the start", attributes={"t": (1, 2), "": 3}).end()
    timed = tracer.start_span("ended when said")
    timed.end(timed.start_time + 42)  # type: ignore[attr-defined]
    not_sampled = tracer.start_span("not sampled", context=_under(UNSAMPLED))
    not_sampled.set_attribute("x", 1)
    not_sampled.end()


def _normalised(spans: Sequence[ReadableSpan]) -> Any:
    """The official encoder's message, with each id as the order it first appears in and times and stack
    traces (which name the tracer's own frames) left out."""
    message = official_encoding(spans)
    ids: dict[bytes, int] = {REMOTE.span_id.to_bytes(8, "big"): -1, REMOTE.trace_id.to_bytes(16, "big"): -2}

    def number(value: bytes) -> bytes:
        return str(ids.setdefault(value, len(ids))).encode() if value else b""

    for resource in message.resource_spans:
        for scope in resource.scope_spans:
            for span in scope.spans:
                span.trace_id, span.span_id = number(span.trace_id), number(span.span_id)
                span.parent_span_id = number(span.parent_span_id)
                span.start_time_unix_nano = span.end_time_unix_nano = 0
                for event in span.events:
                    if event.time_unix_nano > 10**15:  # a time of its own (an exception's), not one given
                        event.time_unix_nano = 0
                    for attribute in event.attributes:
                        if attribute.key == "exception.stacktrace":
                            attribute.value.string_value = attribute.value.string_value.splitlines()[-1]
                for link in span.links:
                    link.trace_id, link.span_id = number(link.trace_id), number(link.span_id)
    return message


def _contexts(made: Setup) -> list[tuple[int, str]]:
    return [(s.context.trace_flags, s.context.trace_state.to_header()) for s in made.memory.get_finished_spans()]


LIMITS = SpanLimits(max_span_attributes=12, max_span_attribute_length=32, max_events=2, max_attribute_length=16)


def _run(scenario: Callable[[trace.Tracer], None], engine: bool, **setup: Any) -> tuple[Setup, Any]:
    made = Setup(**{"limits": LIMITS, **setup})
    scenario(made.tracer(engine))
    return made, _normalised(made.memory.get_finished_spans())


def test_every_span_call_gives_the_sdks_message_and_processor_calls(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        sdk, sdk_message = _run(_everything, engine=False)
    sdk_warnings = sorted({r.getMessage() for r in caplog.records if "ended span" in r.getMessage()})
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        engine, engine_message = _run(_everything, engine=True)
    assert engine_message == sdk_message
    assert _contexts(engine) == _contexts(sdk)  # the trace flags, which the OTLP message does not carry
    assert engine.watching.started == sdk.watching.started
    finished = {s.name: s for s in engine.memory.get_finished_spans()}
    assert list(finished) == [
        "child", "root renamed", "fails", "with span", "plain", "cut at the start", "bounded from the start",
        "ended when said",
    ]  # fmt: skip
    assert all(isinstance(s, EngineSpan) for s in finished.values())
    root, timed = finished["root renamed"], finished["ended when said"]
    assert root.dropped_attributes > 0 and root.dropped_events == 1 and len(root.links) == 1
    assert root.attributes["long"] == "y" * 32 and "after" not in root.attributes
    assert timed.end_time - timed.start_time == 42  # type: ignore[operator]
    # A warning for the calls after the end, as the SDK gives one (its wording of the method aside).
    engine_warnings = [r.getMessage() for r in caplog.records if "ended span" in r.getMessage()]
    assert len(engine_warnings) == 3 and len(sdk_warnings) >= 2


def test_unlimited_plain_spans_are_the_sdks_too() -> None:
    def plain(tracer: trace.Tracer) -> None:
        with tracer.start_as_current_span("step", context=_under(REMOTE), attributes={"id": "i-1", "n": 3}) as step:
            step.set_attribute("durable.outcome", "running")
            step.set_attribute("long", "x" * 10_000)

    assert _run(plain, engine=True, limits=SpanLimits())[1] == _run(plain, engine=False, limits=SpanLimits())[1]


class RecordOnly(Sampler):
    """Records without sampling, and says so in an attribute and the trace state."""

    def should_sample(self, parent_context: Context | None, trace_id: int, name: str, *args: Any,
                      **kwargs: Any) -> SamplingResult:  # fmt: skip
        decision = Decision.DROP if name == "dropped" else Decision.RECORD_ONLY
        return SamplingResult(decision, {"sampler.said": "record only"}, TraceState([("sampler", "here")]))

    def get_description(self) -> str:
        return "RecordOnly"


def test_the_providers_sampler_decides_as_it_does_for_the_sdk() -> None:
    started = {}
    for engine in (False, True):
        made = Setup(LIMITS, sampler=RecordOnly())
        tracer = made.tracer(engine)
        recorded = tracer.start_span("recorded", attributes={"a": 1})
        dropped = tracer.start_span("dropped")
        assert recorded.is_recording() and not dropped.is_recording()
        context = recorded.get_span_context()
        assert not context.trace_flags.sampled and context.trace_state == TraceState([("sampler", "here")])
        recorded.end()
        dropped.end()
        assert made.memory.get_finished_spans() == ()  # not sampled: not exported
        started[engine] = made.watching.started
    assert started[True] == started[False] == [("recorded", True, False)]


def test_what_the_engines_tracer_does_not_cover_goes_to_the_sdks() -> None:
    made = Setup(LIMITS)
    tracer = made.tracer(engine=True)
    assert isinstance(tracer.start_span("linked", links=[Link(REMOTE)]), Span)
    assert isinstance(tracer.start_span("timed", start_time=1), Span)
    assert isinstance(tracer.start_span("quiet", record_exception=False), Span)
    assert isinstance(tracer.start_span("plain"), EngineSpan)


def test_an_api_whose_span_asks_for_more_keeps_the_sdks_tracer(monkeypatch: pytest.MonkeyPatch) -> None:
    from durable_agents.telemetry import setup

    made = Setup(LIMITS)
    assert setup._engine_spans_apply(made.provider)
    # As a later API would, with an abstract method EngineSpan does not have: it could not be made.
    monkeypatch.setattr(EngineSpan, "__abstractmethods__", frozenset({"a_later_method"}))
    assert not setup._engine_spans_apply(made.provider)
