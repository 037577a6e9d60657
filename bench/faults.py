"""`python -m bench.faults`: 1,000 mixed instances under faults, at default settings.

Chains, fan-outs, timers, events raised before and after the wait, and sub-orchestrations run on three
workers while one worker is SIGKILLed (and replaced) every 2 s, the broker's Redis database is flushed
once, and the database drops every connection for 3 s. Prints: instances completed with exact outputs,
effects missing, activity re-executions, the seconds from the last fault until all are complete
(target < 20), and the step queue's peak length (target < 3 x instances). Needs DATABASE_URL and
REDIS_URL; starts its own workers on a fresh task hub.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import redis
from sqlalchemy.engine import make_url

BENCH_DIR = Path(__file__).resolve().parent
#: How long the faults go on: a SIGKILL every 2 s until then.
FAULTS_SECONDS = 14


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--pool", default="prefork")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--no-faults", action="store_true", help="the same run without faults: how long the work itself takes"
    )
    options = parser.parse_args()
    hub = f"faults{uuid.uuid4().hex[:8]}"
    database = make_url(os.environ["DATABASE_URL"])
    effects_url = database.set(drivername="postgresql").render_as_string(hide_password=False)
    os.environ.update({"TASKHUB": hub, "FAULTS_EFFECTS_URL": effects_url})
    sys.path.insert(0, str(BENCH_DIR))
    import faults_app

    from durable_agents import DurableClient
    from durable_agents.store.schema import upgrade

    from .harness import Worker, durable_worker

    upgrade(faults_app.app.settings.database_url)
    with psycopg.connect(effects_url, autocommit=True) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS faults_effects (key text PRIMARY KEY, runs int NOT NULL)")
        connection.execute("DELETE FROM faults_effects WHERE key LIKE %s", (f"{hub}/%",))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BENCH_DIR.parent / "src"), str(BENCH_DIR)])}

    def start_worker() -> Worker:
        return durable_worker(env, options.pool, options.concurrency, name="faults", module="faults_app:app")

    workers = [start_worker() for _ in range(options.workers)]
    client = DurableClient(faults_app.app)
    broker = redis.Redis.from_url(faults_app.app.settings.effective_broker_url)
    queue = faults_app.app.settings.queue("orchestrator")
    peak = _QueuePeak(broker, queue)
    try:
        figures = _run(client, faults_app, workers, start_worker, broker, options, peak, effects_url)
    finally:
        peak.stop()
        for worker in workers:
            worker.stop()
    figures["step_queue_peak"] = peak.peak
    figures["step_queue_peak_per_instance"] = peak.peak / options.instances
    for name, value in figures.items():
        print(f"{name:32} {value:,.2f}" if isinstance(value, float) else f"{name:32} {value:,}")


def _run(client: Any, faults_app: Any, workers: list[Any], start_worker: Any, broker: redis.Redis,
         options: Any, peak: _QueuePeak, effects_url: str) -> dict[str, Any]:  # fmt: skip
    count = options.instances
    kinds = list(faults_app.KINDS)
    plan = [(f"{kinds[n % len(kinds)]}-{n}", kinds[n % len(kinds)], n) for n in range(count)]
    early = {instance for instance, kind, n in plan if kind == "event" and n % 2 == 0}
    for instance, kind, n in plan:
        client.schedule_new_orchestration(kind, input=faults_app.KINDS[kind][0](n), instance_id=instance)
        if instance in early:  # raised before the instance waits for it
            _retrying(lambda i=instance, d=n: client.raise_orchestration_event(i, "go", data=d))
    started = time.monotonic()
    if options.no_faults:  # the same moment the faults would end
        time.sleep(FAULTS_SECONDS)
        last_fault = time.time()
    else:
        last_fault = _faults(client, workers, start_worker, broker, started)
    for instance, kind, n in plan:
        if kind == "event" and instance not in early:  # raised after the faults, while it waits
            _retrying(lambda i=instance, d=n: client.raise_orchestration_event(i, "go", data=d))
    states = {instance: client.wait_for_orchestration_completion(instance, timeout=600) for instance, _, _ in plan}
    done = max(state.completed_at.timestamp() for state in states.values())
    first = min(state.created_at.timestamp() for state in states.values())
    exact = sum(
        1
        for instance, kind, n in plan
        if states[instance].runtime_status == "COMPLETED" and states[instance].output == faults_app.KINDS[kind][1](n)
    )
    expected_effects = sum(faults_app.EFFECTS[kind] for _, kind, _ in plan)
    with psycopg.connect(effects_url) as connection:
        hub = client.taskhub
        effects, reruns = connection.execute(
            "SELECT count(*), coalesce(sum(runs - 1), 0) FROM faults_effects WHERE key LIKE %s", (f"{hub}/%",)
        ).fetchone()
    return {
        "instances": count,
        "completed_exact": exact,
        "effects_expected": expected_effects,
        "effects_missing": expected_effects - effects,
        "activity_reexecutions": int(reruns),
        "seconds_from_last_fault_to_all_complete": done - last_fault,
        # Compare with a --no-faults run: the difference is what the faults cost.
        "seconds_from_first_start_to_all_complete": done - first,
    }


def _retrying(call: Any) -> None:
    """`call`, again while the database is unreachable: the first use of a connection the outage cut fails
    before anything is written, so repeating it raises the event once."""
    from durable_agents.failures import service_failure

    for _ in range(100):
        try:
            call()
            return
        except Exception as error:
            failure = service_failure(error)
            if failure is None or not failure.unreachable:
                raise
            time.sleep(0.2)
    call()


def _faults(client: Any, workers: list[Any], start_worker: Any, broker: redis.Redis, started: float) -> float:
    """Every 2 s for 14 s, SIGKILL a worker and start another; flush the broker at 4 s; drop every database
    connection for 3 s from 7 s. Returns the wall-clock time the last fault ended."""
    outage = threading.Thread(target=_database_outage, args=(client.settings.database_url, started + 7, 3.0))
    outage.start()
    last = time.time()
    replacements: list[threading.Thread] = []
    try:
        for second in range(2, FAULTS_SECONDS + 2, 2):
            time.sleep(max(0.0, started + second - time.monotonic()))
            if second == 4:
                broker.flushdb()  # every queued message, chord count and result: gone
            if not workers:  # every worker is still starting: this kill has no victim
                continue
            victim = workers.pop(random.randrange(len(workers)))
            victim.kill()
            last = time.time()
            # Replaced in the background: a worker takes seconds to start, and the kills go on meanwhile.
            replacement = threading.Thread(target=lambda: workers.append(start_worker()))
            replacement.start()
            replacements.append(replacement)
    finally:  # every replacement joins the list the caller stops at the end, even after a failure
        outage.join()
        for replacement in replacements:
            replacement.join()
    return last


def _database_outage(database_url: str, at: float, seconds: float) -> None:
    url = make_url(database_url).set(drivername="postgresql")
    name = url.database
    admin = url.set(database="postgres").render_as_string(hide_password=False)
    time.sleep(max(0.0, at - time.monotonic()))
    until = time.monotonic() + seconds
    with psycopg.connect(admin, autocommit=True) as connection:
        while time.monotonic() < until:
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            time.sleep(0.05)


class _QueuePeak:
    """The step queue's longest length, sampled every 100 ms."""

    def __init__(self, broker: redis.Redis, queue: str) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(broker, queue), daemon=True)
        self._thread.start()

    def _sample(self, broker: redis.Redis, queue: str) -> None:
        while not self._stop.wait(0.1):
            with contextlib.suppress(redis.RedisError):
                self.peak = max(self.peak, int(broker.llen(queue)))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


if __name__ == "__main__":
    main()
