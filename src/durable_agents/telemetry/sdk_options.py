"""What the OpenTelemetry SDK's own variables ask of the parts here that stand in for the SDK's."""

from __future__ import annotations

import os


def sdk_counts_itself() -> bool:
    """Whether the SDK's metrics of its own spans and exports are on (`OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED`):
    counted in its tracer and its exporter, so neither may be gone around."""
    return os.environ.get("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "").strip().lower() == "true"
