"""Telemetry: OpenTelemetry spans and Prometheus metrics that the layers call around their work."""
