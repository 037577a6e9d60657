"""`python -m bench.faults`: 1,000 mixed instances under faults, at default settings, against the same
workload without faults.

Chains, fan-outs, timers, events raised before and after the wait, and sub-orchestrations run on three
workers. The same workload runs twice, each on a fresh task hub and fresh workers: first without faults
(the baseline: how long the work itself takes, and when each instance completes), then with faults
spread over the run, so that the last one lands near the end of the work and the time after it
measures recovery, not throughput: a worker SIGKILLed (and replaced) every 2 s until 97% of the
instances are complete (but never the last one up: a worker takes 5 to 20 s to start on two shared
cores, so kills every 2 s would otherwise leave none), the broker's Redis database flushed once a
third are, and every database connection terminated for 3 s once 60% are.

Prints, for each run: instances completed with exact outputs, effects missing, activity re-executions,
the whole run's duration and the step queue's peak length (target < 3 x instances). For the faulted run:
the seconds from the last fault until all are complete (target < 20), and what the baseline needed to
finish from the same number of completed instances: the work that was left, had there been no faults.
Their difference is what the faults cost after they stopped. Needs DATABASE_URL and REDIS_URL.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import redis
from sqlalchemy.engine import make_url

BENCH_DIR = Path(__file__).resolve().parent
#: Seconds between SIGKILLs.
KILL_EVERY = 2.0
#: The faults go on until this share of the instances is complete.
FAULTS_UNTIL = 0.97
#: The broker is flushed once this share is complete, and the database outage begins at this share.
FLUSH_AT, OUTAGE_AT = 1 / 3, 0.6
OUTAGE_SECONDS = 3.0


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--pool", default="prefork")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--no-baseline", action="store_true", help="only the run with faults")
    parser.add_argument(
        "--faults-until", type=float, default=FAULTS_UNTIL, help="the share complete when the kills stop (0.97)"
    )
    parser.add_argument("--run", choices=["baseline", "faults"], help=argparse.SUPPRESS)  # one run, as JSON
    options = parser.parse_args()
    if options.run:
        print(json.dumps(_one_run(options, faults=options.run == "faults")))
        return
    # Each run in a process of its own: the app binds its task hub when it is imported.
    common = [f"--instances={options.instances}", f"--workers={options.workers}", f"--pool={options.pool}"]
    common += [f"--concurrency={options.concurrency}", f"--faults-until={options.faults_until}"]
    runs = {}
    for run in ([] if options.no_baseline else ["baseline"]) + ["faults"]:
        command = [sys.executable, "-m", "bench.faults", *common, f"--run={run}"]
        output = subprocess.run(command, cwd=BENCH_DIR.parent, check=True, capture_output=True, text=True).stdout
        runs[run] = json.loads(output.strip().splitlines()[-1])
    _report(runs)


def _report(runs: dict[str, dict[str, Any]]) -> None:
    for run, figures in runs.items():
        print(f"-- {run}")
        for name in ("instances", "completed_exact", "effects_missing", "activity_reexecutions"):
            print(f"{name:44} {figures[name]:,}")
        print(f"{'seconds_from_first_start_to_all_complete':44} {figures['seconds_whole_run']:.1f}")
        peak = figures["step_queue_peak"]
        print(f"{'step_queue_peak':44} {peak:,} ({peak / figures['instances']:.2f} x instances)")
        print(f"{'activity_queue_peak':44} {figures['activity_queue_peak']:,}")
    faulted = runs["faults"]
    print("-- recovery")
    print(f"{'faults (kills, flushes, outages)':44} {faulted['kills']}, 1, 1")
    done_at_last = faulted["completed_at_last_fault"]
    print(f"{'completed when the last fault ended':44} {done_at_last:,} ({done_at_last / faulted['instances']:.0%})")
    print(f"{'seconds_from_last_fault_to_all_complete':44} {faulted['seconds_after_last_fault']:.1f} (target < 20)")
    if "baseline" in runs:
        offsets = runs["baseline"]["completion_offsets"]  # seconds from the first start, sorted
        left = offsets[-1] - offsets[done_at_last - 1] if done_at_last else offsets[-1]
        print(f"{'baseline: seconds to finish from there':44} {left:.1f}")
        print(f"{'cost of the faults after the last one':44} {faulted['seconds_after_last_fault'] - left:.1f}")
        ratio = faulted["seconds_whole_run"] / runs["baseline"]["seconds_whole_run"]
        print(f"{'whole run with faults / without':44} {ratio:.2f}")


def _one_run(options: Any, *, faults: bool) -> dict[str, Any]:
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
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BENCH_DIR.parent / "src"), str(BENCH_DIR)])}

    def start_worker() -> Worker:
        return durable_worker(env, options.pool, options.concurrency, name="faults", module="faults_app:app")

    workers = [start_worker() for _ in range(options.workers)]
    client = DurableClient(faults_app.app)
    broker = redis.Redis.from_url(faults_app.app.settings.effective_broker_url)
    peak = _QueuePeak(broker, faults_app.app.settings.queue("orchestrator"))
    activity_peak = _QueuePeak(broker, faults_app.app.settings.queue("activities"))
    try:
        figures = _run(client, faults_app, workers, start_worker, broker, options, effects_url, faults)
    finally:
        peak.stop()
        activity_peak.stop()
        for worker in workers:
            worker.stop()
        with psycopg.connect(effects_url, autocommit=True) as connection:
            connection.execute("DELETE FROM faults_effects WHERE key LIKE %s", (f"{hub}/%",))
    figures["step_queue_peak"] = peak.peak
    figures["activity_queue_peak"] = activity_peak.peak
    return figures


def _run(client: Any, faults_app: Any, workers: list[Any], start_worker: Any, broker: redis.Redis,
         options: Any, effects_url: str, faults: bool) -> dict[str, Any]:  # fmt: skip
    count = options.instances
    kinds = list(faults_app.KINDS)
    plan = [(f"{kinds[n % len(kinds)]}-{n}", kinds[n % len(kinds)], n) for n in range(count)]
    early = {instance for instance, kind, n in plan if kind == "event" and n % 2 == 0}
    for instance, kind, n in plan:
        client.schedule_new_orchestration(kind, input=faults_app.KINDS[kind][0](n), instance_id=instance)
        if instance in early:  # raised before the instance waits for it
            _retrying(lambda i=instance, d=n: client.raise_orchestration_event(i, "go", data=d))

    def raise_late_events() -> None:  # raised while the instances wait, amid the faults when there are any
        for instance, kind, n in plan:
            if kind == "event" and instance not in early:
                _retrying(lambda i=instance, d=n: client.raise_orchestration_event(i, "go", data=d))

    progress = _Progress(effects_url, client.taskhub, count)
    faulted: dict[str, Any] = {}
    if faults:
        faulted = _faults(client, workers, start_worker, broker, progress, raise_late_events, options.faults_until)
    else:
        progress.wait_for(OUTAGE_AT)  # when the faulted run raises them
        raise_late_events()
    states = {instance: client.wait_for_orchestration_completion(instance, timeout=900) for instance, _, _ in plan}
    first = min(state.created_at.timestamp() for state in states.values())
    completions = sorted(state.completed_at.timestamp() - first for state in states.values())
    exact = sum(
        1
        for instance, kind, n in plan
        if states[instance].runtime_status == "COMPLETED" and states[instance].output == faults_app.KINDS[kind][1](n)
    )
    expected_effects = sum(faults_app.EFFECTS[kind] for _, kind, _ in plan)
    with psycopg.connect(effects_url) as connection:
        effects, reruns = connection.execute(
            "SELECT count(*), coalesce(sum(runs - 1), 0) FROM faults_effects WHERE key LIKE %s",
            (f"{client.taskhub}/%",),
        ).fetchone()
    figures: dict[str, Any] = {
        "instances": count,
        "completed_exact": exact,
        "effects_missing": expected_effects - effects,
        "activity_reexecutions": int(reruns),
        "seconds_whole_run": completions[-1],
        "completion_offsets": completions,
    }
    if faults:
        last = faulted["last_fault"] - first
        figures["seconds_after_last_fault"] = completions[-1] - last
        figures["completed_at_last_fault"] = bisect.bisect_right(completions, last)
        figures["kills"] = faulted["kills"]
    return figures


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


def _faults(client: Any, workers: list[Any], start_worker: Any, broker: redis.Redis, progress: _Progress,
            raise_late_events: Callable[[], None], until: float) -> dict[str, Any]:  # fmt: skip
    """Every 2 s, SIGKILL a worker and start another, until `until` of the instances are complete; flush the
    broker once a third are; cut the database for 3 s once 60% are, then raise the late events. Returns
    when the last fault ended (wall clock) and how many kills there were."""
    last, kills, tick = time.time(), 0, time.monotonic()
    flushed = False
    outage: threading.Thread | None = None
    outage_ended: list[float] = []
    replacements: list[threading.Thread] = []
    try:
        while (done := progress.share()) < until or not flushed or outage is None or outage.is_alive():
            tick += KILL_EVERY
            time.sleep(max(0.0, tick - time.monotonic()))
            print(f"{done:.0%} complete, {len(workers)} workers up, {kills} kills", file=sys.stderr, flush=True)
            if not flushed and done >= FLUSH_AT:
                broker.flushdb()  # every queued message, chord count and result: gone
                flushed, last = True, time.time()
            if outage is None and done >= OUTAGE_AT:
                outage = threading.Thread(target=_outage_then, args=(client, outage_ended, raise_late_events))
                outage.start()
            if len(workers) > 1:  # never the last one up: replicas restart in seconds, not in the time ours take
                workers.pop(random.randrange(len(workers))).kill()
                kills, last = kills + 1, time.time()
                # Replaced in the background: a worker takes seconds to start, and the kills go on meanwhile.
                replacement = threading.Thread(target=lambda: workers.append(start_worker()))
                replacement.start()
                replacements.append(replacement)
    finally:  # every replacement joins the list the caller stops at the end, even after a failure
        if outage is not None:
            outage.join()
        for replacement in replacements:
            replacement.join()
    return {"last_fault": max(last, *outage_ended), "kills": kills}


def _outage_then(client: Any, ended: list[float], then: Callable[[], None]) -> None:
    _database_outage(client.settings.database_url, OUTAGE_SECONDS)
    ended.append(time.time())
    then()


def _database_outage(database_url: str, seconds: float) -> None:
    url = make_url(database_url).set(drivername="postgresql")
    name = url.database
    admin = url.set(database="postgres").render_as_string(hide_password=False)
    until = time.monotonic() + seconds
    with psycopg.connect(admin, autocommit=True) as connection:
        while time.monotonic() < until:
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            time.sleep(0.05)


class _Progress:
    """The share of the planned (top-level) instances complete, read from the database; during the outage
    the last share read."""

    def __init__(self, url: str, taskhub: str, count: int) -> None:
        self._url, self._taskhub, self._count = url, taskhub, count
        self._last = 0.0

    def share(self) -> float:
        with contextlib.suppress(psycopg.Error):
            with psycopg.connect(self._url, connect_timeout=2) as connection:
                (done,) = connection.execute(
                    "SELECT count(*) FROM da_instances WHERE taskhub = %s AND status = 'COMPLETED' "
                    "AND parent_instance_id IS NULL",
                    (self._taskhub,),
                ).fetchone()
            self._last = done / self._count
        return self._last

    def wait_for(self, share: float) -> None:
        while self.share() < share:
            time.sleep(0.5)


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
