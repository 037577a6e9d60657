"""Turning tracing on from the standard OpenTelemetry variables, where the `otel` extra is installed."""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING

from ..errors import ConfigurationError
from . import tracing
from .sdk_options import sdk_counts_itself

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger(__name__)

#: Exporters `OTEL_TRACES_EXPORTER` may name here (a comma list); "none" or unset leaves tracing off.
EXPORTERS = ("otlp", "console")

_lock = threading.Lock()
_configured = False


def configure_tracing(service_name: str | None = None) -> bool:
    """Install an OpenTelemetry SDK tracer provider exporting as `OTEL_TRACES_EXPORTER` says (`otlp`, sent
    to `OTEL_EXPORTER_OTLP_ENDPOINT` over HTTP, or `console`); True if tracing is on. Does nothing when
    the variable is unset or `none`, or when the program installed a tracer provider of its own.
    Workers and the HTTP API call it at start; a program's clients follow its own set-up or this call."""
    global _configured
    wanted = [name.strip() for name in os.environ.get("OTEL_TRACES_EXPORTER", "").split(",") if name.strip()]
    if not wanted or wanted == ["none"]:
        return False
    unknown = [name for name in wanted if name not in EXPORTERS]
    if unknown:
        raise ConfigurationError(
            f"OTEL_TRACES_EXPORTER names {', '.join(unknown)}; use {' or '.join(EXPORTERS)} (or none)"
        )
    with _lock:
        if _configured:
            return True
        try:
            from opentelemetry import trace
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import SpanLimits, SynchronousMultiSpanProcessor, TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            from .engine_spans import EngineTracer
            from .resource import HashedOnce
        except ImportError:
            raise ConfigurationError(
                "OTEL_TRACES_EXPORTER is set but the OpenTelemetry SDK is not installed; "
                'install durable-agents with the otel extra (pip install ".[otel]")'
            ) from None
        if type(trace.get_tracer_provider()).__name__ != "ProxyTracerProvider":
            _configured = True  # the program set up tracing itself: ours would be refused anyway
            return True
        name = service_name or os.environ.get("OTEL_SERVICE_NAME") or "durable-agents"
        created = Resource.create({"service.name": name})
        # Held here as well as by the provider: the engine's own spans go to these processors directly,
        # including any the program adds to the provider later.
        processors, limits = SynchronousMultiSpanProcessor(), SpanLimits()  # type: ignore[no-untyped-call]
        resource = HashedOnce(created.attributes, created.schema_url)
        provider = TracerProvider(resource=resource, active_span_processor=processors, span_limits=limits)
        for exporter in wanted:
            # Batched: a span costs the traced code a queue append; export runs on the processor's thread.
            provider.add_span_processor(BatchSpanProcessor(_exporter(exporter)))
        trace.set_tracer_provider(provider)
        if _engine_spans_apply(provider):
            tracing.install(EngineTracer(provider, processors, limits, tracing.TRACER_NAME))
        _configured = True
        log.info("tracing on: exporting spans to %s", ", ".join(wanted))
        return True


def _engine_spans_apply(provider: TracerProvider) -> bool:
    """Whether the engine's spans may skip the SDK's `Span`: not when the SDK is off (its tracer then records
    nothing) or counts its own spans (`OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED`, counted in its tracer), nor
    with an OpenTelemetry API whose `Span` asks for a method `EngineSpan` lacks (a later version)."""
    from opentelemetry.sdk.trace import Tracer

    from .engine_spans import EngineSpan

    complete = not getattr(EngineSpan, "__abstractmethods__", None)
    return complete and isinstance(provider.get_tracer(tracing.TRACER_NAME), Tracer) and not sdk_counts_itself()


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    try:
        from .otlp_export import HandEncodedOTLPSpanExporter
    except ImportError:
        raise ConfigurationError('OTEL_TRACES_EXPORTER=otlp needs the OTLP exporter: pip install ".[otel]"') from None
    return HandEncodedOTLPSpanExporter()  # endpoint, headers and timeout from the OTEL_EXPORTER_OTLP_* variables
