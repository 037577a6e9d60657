"""`python -m bench.schedules`: recurring schedules under worker crashes, a pause, and an outage of every worker.

At default settings (a sweep a second) on three workers of a fresh task hub:

1. baseline: a schedule firing every second for `--baseline` s, no faults;
2. crashes: the same for `--seconds` s while one worker is SIGKILLed (and replaced) every 10 s;
3. pause: paused for 5 s, then resumed;
4. outage: every worker SIGKILLed for `--outage` s, then restarted. Two schedules ride it out: `allow`
   with a 10 s catch-up window (expected: the fire times of the window's last 10 s before the first
   sweep after the restart start, older ones are skipped) and `skip` with the default window (expected:
   exactly one catch-up run, the earliest missed fire time, as Temporal does; the rest are skipped).

Prints, per phase: fire times due, runs started, fire times missing, duplicates (two runs of one fire
time), and how late runs started (median and max, and the crash phase's median against the baseline's).
Needs DATABASE_URL and REDIS_URL.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
SECOND = timedelta(seconds=1)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.schedules", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60, help="length of the crash phase")
    parser.add_argument("--baseline", type=int, default=20, help="length of the fault-free phase")
    parser.add_argument("--outage", type=int, default=30, help="seconds every worker is down")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--pool", default="prefork")
    parser.add_argument("--concurrency", type=int, default=2)
    options = parser.parse_args()
    os.environ["TASKHUB"] = f"sched{uuid.uuid4().hex[:8]}"
    sys.path.insert(0, str(BENCH_DIR))
    import schedules_app

    from durable_agents import DurableClient
    from durable_agents.store.schema import upgrade

    from .harness import Worker, durable_worker

    upgrade(schedules_app.app.settings.database_url)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BENCH_DIR.parent / "src"), str(BENCH_DIR)])}

    def start_worker() -> Worker:
        return durable_worker(env, options.pool, options.concurrency, name="sched", module="schedules_app:app")

    workers = [start_worker() for _ in range(options.workers)]
    client = DurableClient(schedules_app.app)
    figures: dict[str, Any] = {}
    try:
        figures.update(steady(client, workers, start_worker, options))
        figures.update(pause(client))
        figures.update(outage(client, workers, start_worker, options))
    finally:
        for worker in workers:
            worker.stop()
    for name, value in figures.items():
        print(f"{name:56} {value:,.3f}" if isinstance(value, float) else f"{name:56} {value}")


def fired(client: Any, schedule_id: str) -> dict[datetime, Any]:
    """The runs of a schedule by fire time (ids are `schedule@fire time`)."""
    found = client.query_instances(tags={"schedule": schedule_id}, limit=100_000)
    return {datetime.strptime(s.instance_id.split("@")[1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC): s for s in found}


def due_between(first: datetime, last: datetime) -> list[datetime]:
    return [first + n * SECOND for n in range(int((last - first) / SECOND) + 1)]


def window(client: Any, schedule_id: str, start: datetime, end: datetime, label: str) -> dict[str, Any]:
    """Figures of the fire times in [start, end]: due, started, missing, duplicates, lateness."""
    runs = client.query_instances(tags={"schedule": schedule_id}, limit=100_000)
    in_window = [r for r in runs if start <= fired_at(r.instance_id) <= end]
    times = [fired_at(r.instance_id) for r in in_window]
    due = due_between(start, end)
    late = sorted((r.created_at - fired_at(r.instance_id)).total_seconds() for r in in_window)
    return {
        f"{label}: fire times due": len(due),
        f"{label}: runs started": len(in_window),
        f"{label}: fire times missing": len(set(due) - set(times)),
        f"{label}: duplicate runs": len(times) - len(set(times)),
        f"{label}: start lateness median s": statistics.median(late) if late else float("nan"),
        f"{label}: start lateness max s": max(late) if late else float("nan"),
    }


def fired_at(instance_id: str) -> datetime:
    return datetime.strptime(instance_id.split("@")[1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def steady(client: Any, workers: list[Any], start_worker: Any, options: Any) -> dict[str, Any]:
    """The baseline, then the crash phase: one SIGKILL every 10 s, the victim replaced at once."""
    client.create_schedule("soak", "tick", input="tick", every=SECOND, overlap="allow")
    begin = datetime.now(UTC).replace(microsecond=0) + 2 * SECOND
    time.sleep((begin - datetime.now(UTC)).total_seconds() + options.baseline)
    baseline_end = datetime.now(UTC).replace(microsecond=0) - SECOND
    crashes_start = baseline_end + SECOND
    kills = 0
    started = time.monotonic()
    while started + 10 * (kills + 1) < started + options.seconds:
        time.sleep(max(0.0, started + 10 * (kills + 1) - time.monotonic()))  # a kill every 10 s, on the clock
        victim = workers.pop(kills % len(workers))
        victim.kill()
        kills += 1
        workers.append(start_worker())
    time.sleep(max(0.0, started + options.seconds - time.monotonic()))
    crashes_end = datetime.now(UTC).replace(microsecond=0) - SECOND
    time.sleep(3)  # the last fire times' runs are written
    client.pause_schedule("soak")
    figures = window(client, "soak", begin, baseline_end, "baseline")
    figures.update(window(client, "soak", crashes_start, crashes_end, "crashes"))
    figures["crashes: workers SIGKILLed"] = kills
    base = figures["baseline: start lateness median s"]
    figures["crashes: lateness median / baseline's"] = figures["crashes: start lateness median s"] / base
    return figures


def pause(client: Any) -> dict[str, Any]:
    client.update_schedule("soak", note="pause phase")
    client.resume_schedule("soak")
    time.sleep(3)
    paused = client.pause_schedule("soak")
    time.sleep(5)
    resumed = client.resume_schedule("soak")
    time.sleep(3)
    client.pause_schedule("soak")
    runs = fired(client, "soak")
    during = [t for t in runs if paused.updated_at < t < resumed.updated_at]
    after = [t for t in runs if t > resumed.updated_at]
    return {"pause: runs while paused (expected 0)": len(during), "pause: runs in the 3 s after resuming": len(after)}


def outage(client: Any, workers: list[Any], start_worker: Any, options: Any) -> dict[str, Any]:
    """Every worker SIGKILLed for `options.outage` s, then as many restarted."""
    client.create_schedule("catchup-allow", "tick", every=SECOND, overlap="allow", catchup_window=10 * SECOND)
    client.create_schedule("catchup-skip", "tick", every=SECOND, overlap="skip")
    time.sleep(3)
    down = datetime.now(UTC)
    count = len(workers)
    for worker in workers:
        worker.kill()
    workers.clear()
    time.sleep(options.outage)
    up = datetime.now(UTC)
    workers.extend(start_worker() for _ in range(count))
    time.sleep(5)
    for schedule_id in ("catchup-allow", "catchup-skip"):
        client.pause_schedule(schedule_id)
    figures: dict[str, Any] = {"outage: seconds every worker was down": round((up - down).total_seconds(), 1)}
    allow = fired(client, "catchup-allow")
    # The first run after the outage was started by the first sweep after it: its row time is that sweep's.
    first_sweep = min(s.created_at for t, s in allow.items() if t > down + SECOND and s.created_at > up)
    missed = due_between(down.replace(microsecond=0) + 2 * SECOND, first_sweep.replace(microsecond=0))
    inside = [t for t in missed if t >= first_sweep - 10 * SECOND]
    figures["outage allow/10 s: fire times missed"] = len(missed)
    figures["outage allow/10 s: in the window (expected to start)"] = len(inside)
    figures["outage allow/10 s: of those, started"] = sum(t in allow for t in inside)
    figures["outage allow/10 s: older, started (expected 0)"] = sum(t in allow for t in missed if t not in inside)
    skip = fired(client, "catchup-skip")
    earliest_missed = max(t for t, s in skip.items() if s.created_at < down) + SECOND
    caught = sorted(t for t, s in skip.items() if t < first_sweep and s.created_at > up)
    figures["outage skip/1 year: catch-up runs (expected 1)"] = len(caught)
    figures["outage skip/1 year: it is the earliest missed fire time"] = caught == [earliest_missed]
    figures["outage skip/1 year: skipped count"] = client.get_schedule("catchup-skip").skipped_count
    return figures


if __name__ == "__main__":
    main()
