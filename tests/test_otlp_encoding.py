"""The hand-written OTLP encoding says what the official encoder says, for every kind of span content, and the
exporter built on it sends that over HTTP (or hands a batch to the official path where it must)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as official_encoding
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from durable_agents.telemetry.otlp_encoding import encode_spans
from durable_agents.telemetry.otlp_export import HandEncodedOTLPSpanExporter
from otlp_receiver import OtlpReceiver

VALUES = {
    "text": "café ☕",
    "empty": "",
    "yes": True,
    "no": False,
    "zero": 0,
    "negative": -7,
    "large": 2**62 + 3,
    "ratio": 0.25,
    "zero_float": 0.0,
    "texts": ("a", ""),
    "numbers": [1, -2, 3],
    "flags": [True, False],
    "floats": (0.5, -1.5),
    "nothing_in_it": (),
    "long": "x" * 300,  # a length over 127: a varint of two bytes
}


def _spans() -> list[ReadableSpan]:
    """Spans of two providers (two resources), two scopes each, with every field the SDK fills."""
    memory = InMemorySpanExporter()
    for service in ("one", "two"):
        resource = Resource({"service.name": service, "deployment.count": 3}, "https://opentelemetry.io/schemas/1")
        provider = TracerProvider(resource=resource, span_limits=SpanLimits(max_span_attributes=20, max_events=2))
        provider.add_span_processor(SimpleSpanProcessor(memory))
        plain = provider.get_tracer("durable_agents")
        versioned = provider.get_tracer("other", "1.2.3", "https://example.com/schema", {"scope.kind": "test"})
        remote = SpanContext(
            0x0AF7651916CD43DD8448EB211C80319C,
            0xB7AD6B7169203331,
            is_remote=True,
            trace_flags=TraceFlags(1),
            trace_state=TraceState([("vendor", "value"), ("other", "x")]),
        )
        with plain.start_as_current_span("root", kind=SpanKind.SERVER, attributes=VALUES) as root:
            root.add_event("checkpoint", {"step": 3, "note": "kept"})
            root.add_event("bare")
            root.add_event("over the limit")  # dropped: max_events=2
            root.set_status(Status(StatusCode.OK))
            # Equal in Python, each written its own way (the encoder keeps what it wrote for a value).
            root.set_attribute("same", {"one": True, "two": 1}[service])
            root.set_attribute("same float", {"one": 1, "two": 1.0}[service])
            with versioned.start_as_current_span(
                "child", kind=SpanKind.CONSUMER, links=[Link(remote, {"why": "caused by"}), Link(remote)]
            ) as child:
                child.set_status(Status(StatusCode.ERROR, "ValueError: no luck"))
                for number in range(25):  # 5 dropped: max_span_attributes=20
                    child.set_attribute(f"n{number}", number)
        under_remote = plain.start_span(
            "from another process", context=trace.set_span_in_context(trace.NonRecordingSpan(remote))
        )
        under_remote.end()
        for kind in (SpanKind.INTERNAL, SpanKind.CLIENT, SpanKind.PRODUCER):
            plain.start_span(f"kind {kind.name}", kind=kind).end()
    return list(memory.get_finished_spans())


def _decoded(body: bytes) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest.FromString(body)


def test_the_encoding_decodes_to_the_official_encoders_message() -> None:
    spans = _spans()
    ours, theirs = _decoded(encode_spans(spans)), official_encoding(spans)
    assert ours == theirs
    assert len(ours.resource_spans) == 2 and [len(r.scope_spans) for r in ours.resource_spans] == [2, 2]
    child = next(s for scope in ours.resource_spans[0].scope_spans for s in scope.spans if s.name == "child")
    assert child.dropped_attributes_count == 5 and len(child.links) == 2 and child.status.code == 2
    assert _decoded(encode_spans([])) == official_encoding([])


def test_a_value_otlp_cannot_carry_is_left_out_and_the_rest_kept_as_the_official_encoder_does() -> None:
    context = SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(1))
    odd = ReadableSpan("odd", context, attributes={"kept": 1, "unknown": object(), "also": "kept"},
                       start_time=1, end_time=2)  # fmt: skip
    ours = _decoded(encode_spans([odd]))
    assert ours == official_encoding([odd])
    assert [kv.key for kv in ours.resource_spans[0].scope_spans[0].spans[0].attributes] == ["kept", "also"]


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    running = OtlpReceiver()
    yield running
    running.stop()


def _export(exporter: HandEncodedOTLPSpanExporter, spans: Sequence[ReadableSpan]) -> SpanExportResult:
    try:
        return exporter.export(spans)
    finally:
        exporter.shutdown()


def test_the_exporter_sends_the_hand_encoding(receiver: OtlpReceiver) -> None:
    spans = _spans()
    exporter = HandEncodedOTLPSpanExporter(endpoint=receiver.endpoint)
    assert exporter.hand_encoded  # this version of the official exporter lets us reach its send
    assert _export(exporter, spans) is SpanExportResult.SUCCESS
    assert receiver.bodies == [encode_spans(spans)]


def test_with_the_exporters_own_metrics_on_batches_take_the_official_path(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    spans = _spans()
    exporter = HandEncodedOTLPSpanExporter(endpoint=receiver.endpoint)
    assert not exporter.hand_encoded
    assert _export(exporter, spans) is SpanExportResult.SUCCESS
    assert [_decoded(body) for body in receiver.bodies] == [official_encoding(spans)]


def test_a_collector_that_is_down_is_a_failed_export_not_an_exception() -> None:
    spans = _spans()
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        port = closed.server_address[1]  # bound, then closed: nothing listens there
    exporter = HandEncodedOTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=1)
    assert _export(exporter, spans) is SpanExportResult.FAILURE
