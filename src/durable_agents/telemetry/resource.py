"""The tracer provider's Resource, hashed once: imported only where the OpenTelemetry SDK is installed."""

from __future__ import annotations

from opentelemetry.sdk.resources import Resource


class HashedOnce(Resource):
    """A Resource that computes its hash once. The OTLP exporter groups every span it encodes by its
    resource, and a Resource hashes by serialising its attributes to JSON each time: a quarter of the
    encoding of a span with four attributes. A Resource cannot change after creation, so neither can its
    hash; merging (which the SDK does in each child a prefork pool forks) returns another of these."""

    _hash: int | None = None

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = super().__hash__()
        return self._hash

    def merge(self, other: Resource) -> Resource:
        merged = super().merge(other)
        return HashedOnce(merged.attributes, merged.schema_url)
