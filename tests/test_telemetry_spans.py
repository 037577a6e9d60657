"""The span layer's own pieces, in a process of their own with an in-memory exporter (a tracer provider can be
set once per process): traceparents as the W3C propagator writes and reads them, parents, failures, and the
provider's resource, hashed once, in a forked child too."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from conftest import python_path

SCRIPT = r"""
import json, os
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from durable_agents.telemetry import tracing

VALID, ZERO_TRACE = "00-" + "1" * 32 + "-" + "2" * 16 + "-01", "00-" + "0" * 32 + "-" + "2" * 16 + "-01"
out = {"off": [tracing.tracing_on(), tracing.current_traceparent(), tracing.context_of(VALID)]}
with tracing.span("nothing", {"a": 1}) as nothing:
    out["off"].append(nothing.is_recording())

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
propagator = TraceContextTextMapPropagator()

with tracing.span("root", {"durable.instance_id": "i-1"}) as root:
    mine = tracing.current_traceparent()
    carrier = {}
    propagator.inject(carrier)
    out["same_as_propagator"] = mine == carrier["traceparent"]
    out["explicit_span"] = tracing.current_traceparent(root) == mine
out["outside"] = tracing.current_traceparent()

parent = tracing.context_of(mine)
out["parsed_once"] = parent is tracing.context_of(mine)
with tracing.span("child", {"durable.task_id": 3}, parent=parent, kind=tracing.SpanKind.CONSUMER):
    with tracing.span("grandchild", {}):
        pass
try:
    with tracing.span("fails", {}, parent=parent):
        raise ValueError("no luck")
except ValueError:
    out["restored"] = trace.get_current_span() is trace.INVALID_SPAN
with tracing.span("not an error", {}, parent=parent) as current:
    tracing.failed(current, "ActivityError: as its outcome")
out["bad_parent"] = trace.get_current_span(tracing.context_of(ZERO_TRACE)).get_span_context().is_valid


def fields(context):
    c = trace.get_current_span(context).get_span_context()
    return [c.trace_id, c.span_id, c.trace_flags, c.is_remote, c.is_valid]


# Read as the propagator reads them: ours (parsed here), unsampled, a later version, upper case, malformed.
others = [VALID, VALID[:-2] + "00", "01-" + "a" * 32 + "-" + "b" * 16 + "-01-later", VALID.upper(), "00-12-34-01"]
out["parsed_like_propagator"] = [fields(tracing.context_of(v)) == fields(propagator.extract({"traceparent": v}))
                                 for v in others]

spans = {s.name: s for s in exporter.get_finished_spans()}
out["spans"] = {
    name: {
        "trace": format(s.context.trace_id, "032x"),
        "id": format(s.context.span_id, "016x"),
        "parent": format(s.parent.span_id, "016x") if s.parent else None,
        "kind": s.kind.name,
        "status": s.status.status_code.name,
        "description": s.status.description,
        "events": [e.name for e in s.events],
        "attributes": dict(s.attributes),
    }
    for name, s in spans.items()
}
print(json.dumps(out))
"""

FORKED = r"""
import json, os
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from durable_agents.telemetry import tracing
from durable_agents.telemetry.setup import configure_tracing
assert configure_tracing() and tracing.tracing_on()
resource = trace.get_tracer_provider().resource
read, write = os.pipe()
# As in a prefork pool's child: the SDK merges the process's own resource (a service.instance.id of its own)
# into the provider's.
if os.fork() == 0:
    child = trace.get_tracer_provider().resource
    plain = Resource(child.attributes, child.schema_url)  # hashed the SDK's way, each time
    same = [hash(child) == hash(plain) == hash(child), child == plain, child != resource,
            tracing._tracer.start_span("in the child").resource is child]
    os.write(write, json.dumps([type(child).__name__, same]).encode())
    os._exit(0)
os.wait()
print(json.dumps({"parent": [type(resource).__name__, dict(resource.attributes)["service.name"]],
                  "child": json.loads(os.read(read, 1000)), "tracer": type(tracing._tracer).__name__}))
"""


def _run(script: str, **env: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={"PYTHONPATH": python_path(), "PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_spans_traceparents_and_failures_as_the_opentelemetry_api_makes_them() -> None:
    out = _run(SCRIPT)
    assert out["off"] == [False, None, None, False]  # no provider: nothing is made or parsed
    assert out["same_as_propagator"] and out["explicit_span"]
    assert out["outside"] is None and out["parsed_once"] and out["restored"]
    assert out["bad_parent"] is False  # an all-zero trace id is no parent, as the propagator says
    assert out["parsed_like_propagator"] == [True] * 5
    spans = out["spans"]
    root, child, grandchild = spans["root"], spans["child"], spans["grandchild"]
    assert root["parent"] is None and root["attributes"] == {"durable.instance_id": "i-1"}
    assert child["trace"] == root["trace"] and child["parent"] == root["id"] and child["kind"] == "CONSUMER"
    assert grandchild["parent"] == child["id"]  # the child was current inside its block
    failed = spans["fails"]
    assert failed["parent"] == root["id"] and failed["status"] == "ERROR"
    assert failed["description"] == "ValueError: no luck" and failed["events"] == ["exception"]
    assert spans["not an error"]["status"] == "ERROR" and spans["not an error"]["events"] == []
    assert root["status"] == child["status"] == "UNSET"


def test_the_providers_resource_is_hashed_once_and_stays_so_in_a_forked_child() -> None:
    out = _run(FORKED, OTEL_TRACES_EXPORTER="console", OTEL_SERVICE_NAME="forked")
    assert out["parent"] == ["HashedOnce", "forked"]
    assert out["child"] == ["HashedOnce", [True, True, True, True]]
    assert out["tracer"] == "EngineTracer"  # the engine's spans skip the SDK's Span on its own provider


def test_the_sdks_own_span_metrics_keep_the_sdks_tracer() -> None:
    # They are counted in the SDK's tracer, which the engine's would go around.
    out = _run(FORKED, OTEL_TRACES_EXPORTER="console", OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED="true")
    assert out["tracer"] == "Tracer"
