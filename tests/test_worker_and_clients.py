"""Other ways in: plain `celery -A` with the prefork pool, and the asyncio client."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from durable_agents import AsyncDurableClient, OrchestrationStatus

import workflows
from conftest import Services, make_client, new_taskhub


def test_plain_celery_worker_on_the_prefork_pool(services: Services, start_worker: Any) -> None:
    hub = new_taskhub("celery")
    command = [sys.executable, "-m", "celery", "-A", "workflows", "worker"]
    command += ["--pool", "prefork", "--concurrency", "2", "--loglevel", "INFO", "--hostname", f"{hub}@%h"]
    # Celery orders unrelated bootsteps by hash; under this seed the pool forks its children before
    # the durable-agents step starts, the order that once left children unaware of their queues.
    start_worker(hub, command=command, extra_env={"PYTHONHASHSEED": "1"})
    client = make_client(services, hub)
    state = client.wait_for_orchestration_completion(client.schedule_new_orchestration("parent"), timeout=60)
    assert state.runtime_status == OrchestrationStatus.COMPLETED
    assert state.output == {"single": 10, "many": [0, 2, 4, 6, 8]}
    timed = client.wait_for_orchestration_completion(client.schedule_new_orchestration("sleeper"), timeout=60)
    assert timed.output >= 0.5  # the sweeper runs in the prefork parent and fires timers

    # A pool child runs a chain's activities in place: the queues it serves are known before the
    # pool forks it, so no activity goes through the broker.
    before = _messages(client, "activity:")
    chained = client.wait_for_orchestration_completion(client.schedule_new_orchestration("chain", input=0), timeout=60)
    assert chained.output == 10
    assert _messages(client, "activity:") == before

    # A fan-out of 30 runs through one drainer per worker slot (2 here), not a message per activity.
    drains = _messages(client, "drain:")
    fan_out = client.schedule_new_orchestration("fan_out", input=30)
    fanned = client.wait_for_orchestration_completion(fan_out, timeout=60)
    assert fanned.output == sum(i * i for i in range(30))
    assert _messages(client, "activity:") == before
    assert _messages(client, "drain:") == drains + 2


def _messages(client: Any, shown_as: str) -> int:
    """How many messages the worker has run so far that Celery shows as `shown_as...` (`activity:NAME`,
    `drain:NAME,...`: the names Flower and `inspect` show, which Celery also counts them by)."""
    stats = client.app.control.inspect(timeout=5).stats() or {}
    assert stats, "the worker did not answer inspect().stats()"
    return sum(
        count for worker in stats.values() for name, count in worker["total"].items() if name.startswith(shown_as)
    )


def test_async_client(services: Services, worker: Any) -> None:
    async def scenario() -> tuple[Any, Any, list[Any]]:
        client = AsyncDurableClient(
            workflows.app, taskhub=worker.taskhub, database_url=services.database_url, redis_url=services.redis_url
        )
        instance_id = await client.schedule_new_orchestration("collect_events")
        for item in ["a", "b", "c"]:
            await client.raise_event(instance_id, "item", data=item)
        state = await client.wait_for_orchestration_completion(instance_id, timeout=30)
        metadata = await client.get_instance_metadata(instance_id)
        return state, metadata, await client.get_history(instance_id)

    state, metadata, history = asyncio.run(scenario())
    assert state.output == ["a", "b", "c"]
    assert metadata.runtime_status == OrchestrationStatus.COMPLETED
    assert metadata.serialized_output == '["a", "b", "c"]'
    assert [e["data"] for e in history if e["type"] == "EventRaised"] == ["a", "b", "c"]
