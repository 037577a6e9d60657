"""`python -m bench.telemetry`: chain and fan-out with tracing and metrics on and off, side by side in one run.

Two workers run at once on task hubs of their own: one with no OpenTelemetry SDK configured and no metrics
port (the API's no-op tracer), one exporting every span over OTLP/HTTP to a receiver this process runs
(which decodes and counts them) and serving `/metrics` from a prefork multiprocess directory. The
workloads alternate between them, each run in a client process of the same mode; prints medians, the
ratio on/off (target: within 10%), the spans received and the steps the metrics counted. Needs
DATABASE_URL and REDIS_URL.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results"
MODES = ("off", "on")
CLIENT = """
import json
import engine_app
from bench import workloads
from durable_agents import DurableClient
client = DurableClient(engine_app.app)
print(json.dumps({"chain": workloads.chain_durable(client), "fan_out": workloads.fan_out_durable(client)}))
"""


class SpanCounter:
    """An OTLP/HTTP trace receiver that decodes what it gets and counts the spans."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        self.spans = 0
        lock = threading.Lock()
        counter = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = ExportTraceServiceRequest.FromString(self.rfile.read(int(self.headers["Content-Length"])))
                received = sum(len(scope.spans) for rs in request.resource_spans for scope in rs.scope_spans)
                with lock:
                    counter.spans += received
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.telemetry", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per mode (the median is reported)")
    parser.add_argument("--pool", default="prefork")
    parser.add_argument("--concurrency", type=int, default=4)
    options = parser.parse_args()
    sys.path.insert(0, str(BENCH_DIR))
    import engine_app

    from durable_agents.store.schema import upgrade

    from .harness import durable_worker

    upgrade(engine_app.app.settings.database_url)
    receiver = SpanCounter()
    metrics_port = _free_port()
    base = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BENCH_DIR.parent / "src"), str(BENCH_DIR)])}
    for name in ("OTEL_TRACES_EXPORTER", "PROMETHEUS_MULTIPROC_DIR", "DURABLE_AGENTS_METRICS_PORT"):
        base.pop(name, None)
    envs = {
        "off": {**base, "TASKHUB": f"teloff{uuid.uuid4().hex[:8]}"},
        "on": {
            **base,
            "TASKHUB": f"telon{uuid.uuid4().hex[:8]}",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint,
            "OTEL_SERVICE_NAME": "bench",
            "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="bench-metrics-"),
            "DURABLE_AGENTS_METRICS_PORT": str(metrics_port),
        },
    }
    console = Console()
    workers = [
        durable_worker(envs[mode], options.pool, options.concurrency, name=f"telemetry-{mode}") for mode in MODES
    ]
    figures: dict[str, list[dict[str, dict[str, float]]]] = {mode: [] for mode in MODES}
    try:
        for run in range(options.runs):
            for mode in MODES if run % 2 == 0 else reversed(MODES):  # alternate, so drift favours neither
                console.print(f"run {run + 1}: telemetry {mode}")
                figures[mode].append(_run_client(console, envs[mode]))
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
            scraped = response.read().decode()
    finally:
        for worker in workers:
            worker.stop()
        receiver.server.shutdown()
    report(console, figures, receiver.spans, scraped, options)


def _run_client(console: Console, env: dict[str, str], attempts: int = 3) -> dict[str, dict[str, float]]:
    """One run of both workloads in a client process; a run that fails (a database out of connections, on a
    shared machine) is said and run again."""
    for attempt in range(1, attempts + 1):
        done = subprocess.run(
            [sys.executable, "-c", CLIENT], env=env, cwd=BENCH_DIR.parent, capture_output=True, text=True, timeout=900
        )
        if done.returncode == 0:
            figures: dict[str, dict[str, float]] = json.loads(done.stdout.strip().splitlines()[-1])
            return figures
        last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit status {done.returncode}"
        console.print(f"[red]attempt {attempt} failed: {last}[/]")
    raise RuntimeError(f"{attempts} attempts failed:\n{done.stderr[-3000:]}")


def _steps_counted(scraped: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        sample.value
        for family in text_string_to_metric_families(scraped)
        for sample in family.samples
        if sample.name == "durable_agents_steps_total"
    )


def report(
    console: Console, figures: dict[str, list[dict[str, dict[str, float]]]], spans: int, scraped: str, options: Any
) -> None:
    table = Table(
        "workload", "figure", "telemetry off: median", "telemetry on: median", "on/off", "paired on/off", "target"
    )
    summary: dict[str, Any] = {"options": vars(options), "spans_received": spans, "workloads": {}}
    for workload, figure, target in (("chain", "steps_per_s", ">= 0.9"), ("fan_out", "seconds", "<= 1.1")):
        off = statistics.median(run[workload][figure] for run in figures["off"])
        on = statistics.median(run[workload][figure] for run in figures["on"])
        # Each run's on/off pair ran back to back: their ratio cancels the machine's drift between runs.
        paired = statistics.median(
            on_run[workload][figure] / off_run[workload][figure]
            for on_run, off_run in zip(figures["on"], figures["off"], strict=True)
        )
        summary["workloads"][workload] = {
            "figure": figure,
            "off": [run[workload][figure] for run in figures["off"]],
            "on": [run[workload][figure] for run in figures["on"]],
            "ratio": on / off,
            "paired_ratio": paired,
        }
        table.add_row(workload, figure, f"{off:.3g}", f"{on:.3g}", f"{on / off:.2f}", f"{paired:.2f}", target)
    console.print(table)
    steps = _steps_counted(scraped)
    console.print(f"spans received over OTLP: {spans}; steps counted by the worker's /metrics: {steps:.0f}")
    summary["steps_counted"] = steps
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "telemetry.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
