"""`python -m bench.replay`: how fast `durable-agents replay` checks recorded histories (1,000 of 50 events).

Needs no service: the histories are recorded by running the engine in process, written to a file as
`durable-agents export` writes them, then replayed in process (`durable_agents.replays`, what the command
and `testing.replay` run) and by the command itself (`replay --history FILE`, Python's start-up included).
The baseline, in the same run, is reading the same events without replaying them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results"
TARGET_SECONDS = 10.0


def record(instance_id: str, steps: int) -> list[dict[str, Any]]:
    """The history `counter` leaves after `steps` activities, as the store keeps it."""
    from replay_app import app

    from durable_agents.orchestrator.executor import ReplayExecutor
    from durable_agents.orchestrator.history import (
        EventRaised,
        ExecutionStarted,
        HistoryEvent,
        StepStarted,
        TaskCompleted,
        TaskScheduled,
        event_to_json,
    )

    executor = ReplayExecutor(app.registry.orchestration("counter").fn, instance_id, max_payload_bytes=1 << 20)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    events: list[HistoryEvent] = [StepStarted(timestamp=now), ExecutionStarted(name="counter", input=steps,
                                                                                execution_id="e1")]  # fmt: skip
    history: list[HistoryEvent] = []
    while True:
        result = executor.execute(events)
        history += [*events, *result.new_events]
        scheduled = [event for event in result.new_events if isinstance(event, TaskScheduled)]
        if result.outcome != "running":
            break
        now += timedelta(milliseconds=20)
        if scheduled:
            outcome: HistoryEvent = TaskCompleted(task_id=scheduled[0].task_id, result=scheduled[0].input + 1)
        else:  # waiting for the approval
            outcome = EventRaised(name="approve", data=True)
        events = [StepStarted(timestamp=now), outcome]
    return [{"seq": seq, **event_to_json(event)} for seq, event in enumerate(history)]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.replay", description=__doc__.splitlines()[0])
    parser.add_argument("--histories", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=15, help="activities per history (15: 50 events each)")
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    sys.path.insert(0, str(BENCH_DIR))
    from replay_app import app

    from durable_agents.orchestrator.history import event_from_json
    from durable_agents.replays import read_histories, replay_all

    exported = [{"instance_id": f"i{n}", "history": record(f"i{n}", options.steps)} for n in range(options.histories)]
    events_each = len(exported[0]["history"])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "histories.json"
        path.write_text(json.dumps(exported))
        parse, replay, command, command_cpu = [], [], [], []
        for _ in range(options.runs):
            started = time.perf_counter()
            for item in json.loads(path.read_text()):
                [event_from_json(event) for event in item["history"]]
            parse.append(time.perf_counter() - started)
            started = time.perf_counter()
            reports = replay_all(app.registry, read_histories(path))
            replay.append(time.perf_counter() - started)
            assert all(report.compatible for report in reports), [r.describe() for r in reports if not r.compatible]
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BENCH_DIR.parent / "src"), str(BENCH_DIR)])}
            started, cpu = time.perf_counter(), _children_cpu()
            ran = subprocess.run(
                [sys.executable, "-m", "durable_agents", "replay", "replay_app:app", "--history", str(path), "--json"],
                env=env, cwd=BENCH_DIR, capture_output=True, text=True, check=False,
            )  # fmt: skip
            command.append(time.perf_counter() - started)
            command_cpu.append(_children_cpu() - cpu)
            assert ran.returncode == 0, ran.stderr[-2000:]
    figures = {
        "histories": options.histories,
        "events_each": events_each,
        "read_only_seconds": statistics.median(parse),
        "replay_seconds": statistics.median(replay),
        "command_seconds": statistics.median(command),
        "command_cpu_seconds": statistics.median(command_cpu),
        "target_seconds": TARGET_SECONDS,
    }
    figures["replay_vs_read_only"] = figures["replay_seconds"] / figures["read_only_seconds"]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "replay.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(
        f"{options.histories} histories of {events_each} events: replayed in {figures['replay_seconds']:.2f} s "
        f"in process ({figures['replay_vs_read_only']:.1f}x reading them alone, {figures['read_only_seconds']:.2f} s); "
        f"`durable-agents replay --history` end to end {figures['command_seconds']:.2f} s "
        f"({figures['command_cpu_seconds']:.2f} s of CPU, Python's start-up included; target < {TARGET_SECONDS:g} s); "
        f"medians of {options.runs} runs; load average {os.getloadavg()[0]:.1f}"
    )
    if figures["replay_seconds"] >= TARGET_SECONDS or figures["command_cpu_seconds"] >= TARGET_SECONDS:
        raise SystemExit(1)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
