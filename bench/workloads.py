"""The six workloads, each returning its figures; durable runs beside their plain-Celery baselines."""

from __future__ import annotations

import itertools
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from celery import chain as celery_chain
from celery import chord
from sqlalchemy import func, select, text

from durable_agents import DurableAgentClient, DurableClient, OrchestrationStatus
from durable_agents.models import Instance, WorkItem
from durable_agents.store.db import transaction

Figures = dict[str, float]


def _finished_together(client: DurableClient, ids: list[str], timeout: float) -> list[Any]:
    return [client.wait_for_orchestration_completion(i, timeout=timeout) for i in ids]


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def chain_durable(client: DurableClient, instances: int = 50, steps: int = 10) -> Figures:
    started = time.time()
    ids = [client.schedule_new_orchestration("chain", input=steps) for _ in range(instances)]
    states = _finished_together(client, ids, 300)
    assert all(s.output == steps for s in states)
    latencies = [(s.completed_at - s.created_at).total_seconds() for s in states]
    wall = max(s.completed_at.timestamp() for s in states) - started
    return {
        "steps_per_s": instances * steps / wall,
        "p50_s": _percentile(latencies, 0.5),
        "p99_s": _percentile(latencies, 0.99),
    }


def chain_celery(instances: int = 50, steps: int = 10) -> Figures:
    from celery_app import noop

    started = time.time()
    results = [celery_chain(noop.s(0), *[noop.s() for _ in range(steps - 1)]).apply_async() for _ in range(instances)]
    done: list[float] = []
    for result in results:
        result.get(timeout=300)
        done.append(result.date_done.timestamp())
    for result in results:
        _forget_chain(result)
    latencies = [d - started for d in done]
    return {
        "steps_per_s": instances * steps / (max(done) - started),
        "p50_s": _percentile(latencies, 0.5),
        "p99_s": _percentile(latencies, 0.99),
    }


def fan_out_durable(client: DurableClient, width: int = 200) -> Figures:
    started = time.time()
    state = client.wait_for_orchestration_completion(
        client.schedule_new_orchestration("fan_out", input=width), timeout=300
    )
    assert state.output == sum(range(width))
    return {"seconds": state.completed_at.timestamp() - started}


def fan_out_celery(width: int = 200) -> Figures:
    from celery_app import noop, total

    started = time.time()
    result = chord([noop.s(i) for i in range(width)])(total.s())
    assert result.get(timeout=300) == sum(range(width))
    seconds = result.date_done.timestamp() - started
    _forget_chain(result)
    return {"seconds": seconds}


def _forget_chain(result: Any) -> None:
    """Drop a baseline's results from Redis: a database full of earlier runs' results slows every later run."""
    while result is not None:
        result.forget()
        result = result.parent


def long_history(client: DurableClient, steps: int = 2000) -> Figures:
    instance_id = client.schedule_new_orchestration("chain", input=steps)
    client.wait_for_orchestration_completion(instance_id, timeout=1800)
    starts = [
        datetime.fromisoformat(e["timestamp"]) for e in client.get_history(instance_id) if e["type"] == "StepStarted"
    ]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    first, last = statistics.mean(gaps[:10]), statistics.mean(gaps[-10:])
    return {"first_10_ms": first * 1000, "last_10_ms": last * 1000, "ratio": last / first}


def waiting(client: DurableClient, count: int, active_tasks: Callable[[], int]) -> Figures:
    prefix = f"wait-{time.time_ns()}-"
    ids = [client.schedule_new_orchestration("waiter", instance_id=f"{prefix}{i}") for i in range(count)]
    hub = client.taskhub
    deadline = time.monotonic() + 1800
    while _count(client, hub, prefix, "RUNNING") < count:
        if time.monotonic() > deadline:
            raise RuntimeError("waiting instances did not all start")
        time.sleep(0.5)
    rows, size = _storage(client, hub, prefix)
    slots = active_tasks()
    raised = time.time()
    for instance_id in ids:
        client.raise_event(instance_id, "go", data=1)
    while _count(client, hub, prefix, "COMPLETED") < count:
        if time.monotonic() > deadline:
            raise RuntimeError("waiting instances did not all complete")
        time.sleep(0.2)
    with transaction(client.settings.database_url) as session:
        last = session.scalar(
            select(func.max(Instance.completed_at)).where(
                Instance.taskhub == hub, Instance.instance_id.startswith(prefix)
            )
        )
    assert last is not None
    return {
        "rows_per_instance": rows / count,
        "bytes_per_instance": size / count,
        "worker_slots_held": float(slots),
        "raise_and_complete_s": last.timestamp() - raised,
    }


def _count(client: DurableClient, hub: str, prefix: str, status: str) -> int:
    with transaction(client.settings.database_url) as session:
        return int(
            session.scalar(
                select(func.count()).where(
                    Instance.taskhub == hub, Instance.instance_id.startswith(prefix), Instance.status == status
                )
            )
            or 0
        )


def _storage(client: DurableClient, hub: str, prefix: str) -> tuple[int, int]:
    """Rows and bytes (row data, not indexes) stored for the waiting instances."""
    rows = size = 0
    with transaction(client.settings.database_url) as session:
        for table in ("da_instances", "da_history", "da_inbox", "da_work_items", "da_timers"):
            query = text(
                f"SELECT count(*), coalesce(sum(pg_column_size(t.*)), 0) FROM {table} t "
                "WHERE taskhub = :hub AND instance_id LIKE :prefix"
            )
            count, bytes_ = session.execute(query, {"hub": hub, "prefix": f"{prefix}%"}).one()
            rows += int(count)
            size += int(bytes_)
    return rows, size


def agents(client: DurableClient, model_url: str, turns: int = 100, model_latency_ms: int = 50) -> Figures:
    agent = DurableAgentClient(client).get_agent("Benchy")

    def all_at_once(count: int) -> None:
        ids = [agent.run_sync("hi", session=agent.create_session(), wait_for_response=False) for _ in range(count)]
        for correlation_id in ids:
            agent.wait(correlation_id, timeout=600)

    def one() -> None:
        agent.run_sync("hi", session=agent.create_session())

    instructions = client.app.agent("Benchy").instructions
    return _turn_figures(one, all_at_once, turns, model_url, instructions, model_latency_ms)


def agents_celery(model_url: str, instructions: str, turns: int = 100, model_latency_ms: int = 50) -> Figures:
    """The agents workload as plain Celery tasks: each turn one task making the same streamed request."""
    from celery_app import agent_turn

    def all_at_once(count: int) -> None:
        results = [agent_turn.delay(instructions, "hi") for _ in range(count)]
        for result in results:
            result.get(timeout=600)
            result.forget()

    def one() -> None:
        agent_turn.delay(instructions, "hi").get(timeout=60)

    return _turn_figures(one, all_at_once, turns, model_url, instructions, model_latency_ms)


def _turn_figures(
    one: Callable[[], None],
    all_at_once: Callable[[int], None],
    turns: int,
    model_url: str,
    instructions: str,
    model_latency_ms: int,
) -> Figures:
    """Overhead from 10 sequential turns (`one`) against the model alone; throughput from `turns` started
    at once and awaited (`all_at_once`)."""
    sequential = []
    for _ in range(10):
        started = time.monotonic()
        one()
        sequential.append(time.monotonic() - started)
    started = time.monotonic()
    all_at_once(turns)
    wall = time.monotonic() - started
    model_alone = _model_call_alone(model_url, instructions)
    return {
        "turns_per_s": turns / wall,
        "model_alone_ms": model_alone * 1000,
        "overhead_ms": (statistics.median(sequential) - model_alone) * 1000,
        "beyond_latency_ms": statistics.median(sequential) * 1000 - model_latency_ms,
    }


#: The same streamed request a turn makes, sent with the openai SDK alone from a process of its own
#: (as a worker's is): the model's latency as its callers see it, the baseline of a turn's overhead.
_MODEL_ALONE = """
import statistics, sys, time
import openai
sdk = openai.OpenAI(base_url=sys.argv[1], api_key="bench")
messages = [{"role": "system", "content": sys.argv[2]}, {"role": "user", "content": "hi"}]
took = []
for _ in range(13):
    started = time.monotonic()
    for _chunk in sdk.chat.completions.create(
        model="bench", messages=messages, stream=True, stream_options={"include_usage": True}
    ):
        pass
    took.append(time.monotonic() - started)
print(statistics.median(took[3:]))
"""


def _model_call_alone(model_url: str, instructions: str) -> float:
    command = [sys.executable, "-c", _MODEL_ALONE, model_url, instructions]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(done.stdout)


def recovery(client: DurableClient, kill_owner: Callable[[str], float]) -> Figures:
    """A SIGKILL of the worker running an activity, at the default 60 s lease: seconds until the instance
    completes on another worker (the killed holder's silence frees the lease, then the activity runs again)."""
    instance_id = client.schedule_new_orchestration("slow_one", input=1.0)
    deadline = time.monotonic() + 60
    owner = None
    while owner is None:
        with transaction(client.settings.database_url) as session:
            owner = session.scalar(select(WorkItem.lease_owner).where(WorkItem.instance_id == instance_id))
        if time.monotonic() > deadline:
            raise RuntimeError("the activity was never claimed")
        time.sleep(0.02)
    killed_at = kill_owner(owner)
    state = client.wait_for_orchestration_completion(instance_id, timeout=120)
    assert state.runtime_status == OrchestrationStatus.COMPLETED
    seconds = state.completed_at.timestamp() - killed_at
    return {"seconds": seconds}


def in_thread(fn: Callable[[], Figures]) -> Figures:
    """Run `fn` on a thread (so Celery result waits do not share the main thread's event loop state)."""
    out: dict[str, Figures] = {}
    thread = threading.Thread(target=lambda: out.setdefault("r", fn()))
    thread.start()
    thread.join()
    return out["r"]
