"""Where a sequential agent turn's time goes: `python -m bench.turn_phases [--turns 60] [--latency-ms 0]`.

Starts its own worker (prefork, 4 processes) and test model, runs sequential turns each on a new
session, and prints the median of each phase, read from the client's clock and the database's:
the client's submit; from it to the transaction of the turn's first step; from that to the
transaction that records the model's reply; from that to the client holding the result. The
overhead is the whole turn less the same request sent to the model alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from typing import Any

from .harness import BENCH_DIR, durable_worker


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.turn_phases", description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=60, help="sequential turns (the first 5 warm up)")
    parser.add_argument("--latency-ms", type=int, default=0, help="the test model's latency")
    options = parser.parse_args()
    os.environ.update({"TASKHUB": f"phases{uuid.uuid4().hex[:8]}", "DURABLE_AGENTS_LEASE_SECONDS": "2"})
    sys.path.insert(0, str(BENCH_DIR))
    from durable_agents.testing import TestModelServer

    with TestModelServer(latency_ms=options.latency_ms) as model:
        os.environ["MODEL_SERVER_URL"] = model.url
        import engine_app

        from durable_agents.store.schema import upgrade

        from .workloads import _model_call_alone

        upgrade(engine_app.app.settings.database_url)
        worker = durable_worker({**os.environ, "PYTHONPATH": str(BENCH_DIR)}, "prefork", 4)
        try:
            phases = measure(engine_app.app, options.turns)
        finally:
            worker.stop()
        alone = _model_call_alone(model.url, engine_app.app.agent("Benchy").instructions) * 1000
    for name in phases[0]:
        print(f"{name:28s} {statistics.median(p[name] for p in phases):7.2f} ms")
    print(f"{'the model alone':28s} {alone:7.2f} ms")
    print(f"{'overhead':28s} {statistics.median(p['whole turn'] for p in phases) - alone:7.2f} ms")


def measure(app: Any, turns: int) -> list[dict[str, float]]:
    from sqlalchemy import select

    from durable_agents import DurableAgentClient, DurableClient
    from durable_agents.models import HistoryRow
    from durable_agents.store.db import transaction

    agent = DurableAgentClient(DurableClient(app)).get_agent("Benchy")
    timings = []
    for _ in range(turns):
        session = agent.create_session()
        started = time.time()
        correlation_id = agent.run_sync("hi", session=session, wait_for_response=False)
        submitted = time.time()
        agent.wait(correlation_id)
        timings.append((correlation_id, started, submitted, time.time()))
    phases = []
    with transaction(app.settings.database_url) as db:
        for correlation_id, started, submitted, done in timings[5:]:
            events = db.scalars(
                select(HistoryRow.event)
                .where(HistoryRow.taskhub == app.settings.taskhub, HistoryRow.instance_id == f"@turn:{correlation_id}")
                .order_by(HistoryRow.seq)
            )
            steps = [_epoch(event["timestamp"]) for event in events if event["type"] == "StepStarted"]
            phases.append(
                {
                    "client submit": (submitted - started) * 1000,
                    "submit to first step": (steps[0] - started) * 1000,
                    "first step to reply's step": (steps[-1] - steps[0]) * 1000,
                    "reply's step to client": (done - steps[-1]) * 1000,
                    "whole turn": (done - started) * 1000,
                }
            )
    return phases


def _epoch(timestamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


if __name__ == "__main__":
    main()
