"""`python -m bench.telemetry`: chain and fan-out with tracing and metrics on and off, side by side in one run.

Two workers run at once on task hubs of their own: one with no OpenTelemetry SDK configured and no metrics
port (the API's no-op tracer), one exporting every span over OTLP/HTTP to a receiver this process runs and
serving `/metrics` from a prefork multiprocess directory. The receiver stands in for a collector on another
machine: it keeps each request's body and answers at once, and decodes and counts the spans only after the
runs. Each run ends when the "on" worker's spans have all arrived, so their export is charged to the run that
made them, never to the next one.

By default both modes run at the same time (`--together` seconds, a client each, repeating the workload):
whatever else the machine does then, it does to both, and the ratio of their throughputs is what telemetry
costs. With `--together 0` the modes take turns instead, one run each, after a warm-up. Prints, per workload,
the medians of the throughput (steps or activities a second) and their ratio on/off (target: within 10%), and
the CPU time the worker's processes spent per step (or per activity), read from /proc (Linux). Needs
DATABASE_URL and REDIS_URL.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .harness import Worker, durable_worker

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results"
MODES = ("off", "on")
WORKLOADS = ("chain", "fan_out")
#: Says it is ready once imported and set up, and runs when told: the bench reads the worker's CPU time
#: in between, so a client's start-up (seconds, on a busy machine), during which the worker idles, is not in it.
#: With `seconds`, it runs the workload again and again until they have passed, and its throughput is over the
#: runs that ended by then: the other mode's client, doing the same, was busy throughout each of them.
CLIENT = """
import json, sys, time
import engine_app
from bench import workloads
from durable_agents import DurableClient
client = DurableClient(engine_app.app)
workload, size, seconds = sys.argv[1], json.loads(sys.argv[2]), float(sys.argv[3])
units = size["width"] if workload == "fan_out" else size["instances"] * size["steps"]
print("ready", flush=True)
sys.stdin.readline()
cpu, started = time.process_time(), time.time()
run = workloads.chain_durable if workload == "chain" else workloads.fan_out_durable
if not seconds:
    figures = run(client, **size)
    per_s = figures["steps_per_s"] if workload == "chain" else units / figures["seconds"]
    print(json.dumps({**figures, "per_s": per_s, "units": units, "client_cpu_s": time.process_time() - cpu}))
    sys.exit()
deadline, ended, done, total = started + seconds, started, 0, 0
while time.time() < deadline:
    run(client, **size)
    total += units
    if time.time() <= deadline:
        ended, done = time.time(), total
print(json.dumps({"per_s": done / (ended - started) if done else 0.0, "units": total, "runs": total // units,
                  "client_cpu_s": time.process_time() - cpu}))
"""
Run = dict[str, float]


class SpanReceiver:
    """An OTLP/HTTP trace receiver that keeps what it is sent and counts the spans when asked.

    Decoding a request costs about as much as encoding it did; a collector does that on its own machine,
    so here it waits until the runs are over instead of competing with the workers for the two cores."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a collector: the exporter reuses its connection

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                bodies.append(gzip.decompress(body) if self.headers.get("Content-Encoding") == "gzip" else body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_quiet(self, seconds: float) -> None:
        """Return once nothing has arrived for `seconds`: longer than a batch processor waits between exports,
        so every span ended so far has been received."""
        seen, since = len(self.bodies), time.monotonic()
        while time.monotonic() - since < seconds:
            time.sleep(0.05)
            if len(self.bodies) != seen:
                seen, since = len(self.bodies), time.monotonic()

    def spans(self) -> int:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        requests = (ExportTraceServiceRequest.FromString(body) for body in self.bodies)
        return sum(len(scope.spans) for r in requests for rs in r.resource_spans for scope in rs.scope_spans)


def group_cpu_seconds(group: int) -> float:
    """CPU time (user and system) the processes of process group `group` have used so far, those that ended
    and were waited for included (Linux)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[2]) == group:
            total += sum(int(field) for field in fields[11:15])  # utime stime cutime cstime
    return total / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.telemetry", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per mode (the median is reported)")
    parser.add_argument(
        "--together", type=float, default=20, help="seconds both modes run at once, per run (0: they take turns)"
    )
    parser.add_argument("--warmup", type=int, default=1, help="runs per mode first, not counted")
    parser.add_argument("--pool", default="prefork")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--instances", type=int, default=50, help="chain: instances started at once")
    parser.add_argument("--steps", type=int, default=10, help="chain: activities one after another per instance")
    parser.add_argument("--width", type=int, default=200, help="fan-out: activities at once")
    parser.add_argument("--workloads", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    parser.add_argument(
        "--export-delay-ms",
        type=int,
        default=5000,
        help="the 'on' worker's OTEL_BSP_SCHEDULE_DELAY (the SDK's default)",
    )
    options = parser.parse_args()
    sys.path.insert(0, str(BENCH_DIR))
    import engine_app

    from durable_agents.store.schema import upgrade

    upgrade(engine_app.app.settings.database_url)
    receiver = SpanReceiver()
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
            "OTEL_BSP_SCHEDULE_DELAY": str(options.export_delay_ms),
            "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="bench-metrics-"),
            "DURABLE_AGENTS_METRICS_PORT": str(metrics_port),
        },
    }
    sizes = {
        "chain": {"instances": options.instances, "steps": options.steps},
        "fan_out": {"width": options.width},
    }
    # Longer than the batch processor waits between exports: every span ended by then has arrived.
    quiet = options.export_delay_ms / 1000 + 1
    console = Console()
    workers = {
        mode: durable_worker(envs[mode], options.pool, options.concurrency, name=f"telemetry-{mode}") for mode in MODES
    }
    figures: dict[str, dict[str, list[Run]]] = {mode: {w: [] for w in WORKLOADS} for mode in MODES}
    try:
        for run in range(options.warmup + options.runs):
            counted = run >= options.warmup
            # Alternate, so drift (or who starts first) favours neither.
            modes = list(MODES if run % 2 == 0 else reversed(MODES))
            for workload in options.workloads:
                clients = [modes] if options.together else [[mode] for mode in modes]
                for together in clients:
                    what = "together" if len(together) > 1 else f"telemetry {together[0]}"
                    console.print(f"{'run' if counted else 'warm-up'} {run + 1}: {workload}, {what}")
                    measured = _measure(console, envs, workers, receiver, quiet, workload, sizes, options.together,
                                        together)  # fmt: skip
                    for mode, result in measured.items():
                        if counted:
                            figures[mode][workload].append(result)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
            scraped = response.read().decode()
    finally:
        for worker in workers.values():
            worker.stop()
        receiver.server.shutdown()
    report(console, figures, receiver.spans(), scraped, options)


def _measure(
    console: Console,
    envs: dict[str, dict[str, str]],
    workers: dict[str, Worker],
    receiver: SpanReceiver,
    quiet: float,
    workload: str,
    sizes: dict[str, dict[str, int]],
    seconds: float,
    modes: list[str],
    attempts: int = 3,
) -> dict[str, Run]:
    """A run of `workload` by a client process of each of `modes`, started together, and the CPU time each
    worker spent from the moment its client, set up, started until the run's spans had all arrived; a run that
    fails (a database out of connections, on a shared machine) is said and run again."""
    command = [sys.executable, "-c", CLIENT, workload, json.dumps(sizes[workload]), str(seconds)]
    for attempt in range(1, attempts + 1):
        measured, err = _attempt(command, envs, workers, receiver, quiet, modes)
        if measured is not None:
            return measured
        console.print(f"[red]attempt {attempt} failed: {err.strip().splitlines()[-1] if err.strip() else err}[/]")
    raise RuntimeError(f"{attempts} attempts failed:\n{err[-3000:]}")


def _attempt(
    command: list[str],
    envs: dict[str, dict[str, str]],
    workers: dict[str, Worker],
    receiver: SpanReceiver,
    quiet: float,
    modes: list[str],
) -> tuple[dict[str, Run] | None, str]:
    """The figures of each mode's client, or None and what a failed one wrote to stderr."""
    with ExitStack() as stack:
        errors = {mode: stack.enter_context(tempfile.TemporaryFile("w+")) for mode in modes}
        clients = {
            mode: subprocess.Popen(command, env=envs[mode], cwd=BENCH_DIR.parent, stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=errors[mode], text=True)
            for mode in modes
        }  # fmt: skip
        pipes = [(client.stdin, client.stdout) for client in clients.values()]
        ready = [out is not None and out.readline().strip() == "ready" for _, out in pipes]  # "" if it failed
        worker_cpu = {mode: group_cpu_seconds(workers[mode].process.pid) for mode in modes}
        for into, _ in pipes:  # told one right after the other: together, they run from here
            assert into is not None
            if all(ready):
                into.write("go\n")
                into.flush()
        for into, _ in pipes:
            assert into is not None
            into.close()
        outs = {mode: out.read() if out is not None else "" for mode, (_, out) in zip(modes, pipes, strict=True)}
        codes = {mode: client.wait(timeout=900) for mode, client in clients.items()}
        receiver.wait_quiet(quiet)
        for mode in modes:
            if codes[mode] != 0 or not all(ready):
                errors[mode].seek(0)
                return None, errors[mode].read() or f"exit status {codes[mode]}"
    measured: dict[str, Run] = {}
    for mode in modes:
        measured[mode] = json.loads(outs[mode].strip().splitlines()[-1])
        measured[mode]["worker_cpu_s"] = group_cpu_seconds(workers[mode].process.pid) - worker_cpu[mode]
    return measured, ""


def _steps_counted(scraped: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        sample.value
        for family in text_string_to_metric_families(scraped)
        for sample in family.samples
        if sample.name == "durable_agents_steps_total"
    )


def _paired(figures: dict[str, dict[str, list[Run]]], workload: str, figure: str) -> float:
    """The median of each run's on/off ratio: a pair ran at once or back to back, so their ratio cancels the
    machine's drift between runs."""
    pairs = zip(figures["on"][workload], figures["off"][workload], strict=True)
    return statistics.median(on[figure] / off[figure] for on, off in pairs)


def report(console: Console, figures: dict[str, dict[str, list[Run]]], spans: int, scraped: str, options: Any) -> None:
    summary: dict[str, Any] = {"options": vars(options), "spans_received": spans, "workloads": {}}
    speed = Table("workload", "per second", "off: median", "on: median", "on/off", "paired on/off", "target")
    cpu = Table("workload", "worker CPU per", "off: median", "on: median", "on/off", "paired on/off", "added")
    for workload, unit, rate in (("chain", "step (and its activity)", "steps"), ("fan_out", "activity", "activities")):
        if workload not in options.workloads:
            continue
        runs = {mode: figures[mode][workload] for mode in MODES}
        off, on = (statistics.median(run["per_s"] for run in runs[mode]) for mode in MODES)
        paired = _paired(figures, workload, "per_s")
        speed.add_row(workload, rate, f"{off:.3g}", f"{on:.3g}", f"{on / off:.2f}", f"{paired:.2f}", ">= 0.9")
        per_unit = {mode: [run["worker_cpu_s"] / run["units"] for run in runs[mode]] for mode in MODES}
        cpu_off, cpu_on = (statistics.median(per_unit[mode]) for mode in MODES)
        added = statistics.median(on - off for on, off in zip(per_unit["on"], per_unit["off"], strict=True))
        paired_cpu = statistics.median(on / off for on, off in zip(per_unit["on"], per_unit["off"], strict=True))
        cpu.add_row(
            workload, unit, f"{cpu_off * 1e3:.2f} ms", f"{cpu_on * 1e3:.2f} ms", f"{cpu_on / cpu_off:.2f}",
            f"{paired_cpu:.2f}", f"{added * 1e6:.0f} µs",
        )  # fmt: skip
        summary["workloads"][workload] = {
            "figure": "per_s",
            "off": [run["per_s"] for run in runs["off"]],
            "on": [run["per_s"] for run in runs["on"]],
            "ratio": on / off,
            "paired_ratio": paired,
            "worker_cpu_per_unit_s": per_unit,
            "client_cpu_s": {mode: [run["client_cpu_s"] for run in runs[mode]] for mode in MODES},
            "runs": {mode: runs[mode] for mode in MODES},
        }
    console.print(speed)
    console.print(cpu)
    steps = _steps_counted(scraped)
    console.print(f"spans received over OTLP: {spans}; steps counted by the worker's /metrics: {steps:.0f}")
    summary["steps_counted"] = steps
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "telemetry.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
