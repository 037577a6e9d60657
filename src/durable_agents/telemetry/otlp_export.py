"""OTLP/HTTP span export with `otlp_encoding`'s encoder and the official exporter's everything else."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from .otlp_encoding import encode_spans
from .sdk_options import sdk_counts_itself

__all__ = ["HandEncodedOTLPSpanExporter"]

log = logging.getLogger(__name__)


class HandEncodedOTLPSpanExporter(OTLPSpanExporter):
    """The official OTLP/HTTP exporter (endpoint, headers, TLS, compression, timeout and retries from the
    same `OTEL_EXPORTER_OTLP_*` variables and arguments), whose batches are encoded by hand at less than
    half the cost. Where the official exporter's send cannot be reached (another version of it), or its
    own metrics of exports are on (counted in its `export`), every batch takes the official path."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        client = getattr(self, "_client", None)
        send = getattr(client, "export", None)
        self._send: Callable[[bytes], Any] | None = send if callable(send) and not sdk_counts_itself() else None

    @property
    def hand_encoded(self) -> bool:
        """Whether batches are encoded here (else by the official exporter)."""
        return self._send is not None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        send = self._send
        if send is None or self._shutdown:
            return super().export(spans)
        try:
            body = encode_spans(spans)
        except Exception:  # a span this encoder does not know how to write: the official one may
            log.warning("could not encode a batch of %d spans by hand; using the official encoder", len(spans),
                        exc_info=True)  # fmt: skip
            return super().export(spans)
        limit = getattr(self, "_max_request_size", None)
        if limit is not None and 0 < limit < len(body):
            return super().export(spans)  # too large: the official path drops it and says so
        return SpanExportResult.SUCCESS if send(body).success else SpanExportResult.FAILURE
