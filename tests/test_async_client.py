"""One asyncio client, many turns in flight: no thread is held per turn while it runs."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest

from durable_agents import AsyncDurableClient, DurableAgentClient, DurableClient, OrchestrationStatus
from durable_agents.agents.proxy import AGENT_TURN
from durable_agents.async_waits import IO_THREADS, in_io_thread

from conftest import WorkerProcess

pytestmark = pytest.mark.usefixtures("fresh_model")

TURNS = 60


def test_many_turns_in_flight_from_one_async_client_hold_few_threads(
    agents_worker: WorkerProcess, agents_client: DurableClient, agents: DurableAgentClient
) -> None:
    tag = uuid.uuid4().hex[:8]
    joker = agents.get_agent("Joker")

    def asked() -> int:
        """Turns started and not yet run (the worker is stopped): none of this hub's earlier turns waits."""
        return len(agents_client.query_instances(name=AGENT_TURN, statuses=["PENDING"], limit=TURNS + 1))

    async def main() -> tuple[list[str], int, int]:
        baseline = threading.active_count()
        turns = [asyncio.create_task(joker.run(f"Question {i}", session=f"{tag}-{i}")) for i in range(TURNS)]
        deadline = time.monotonic() + 60
        while await in_io_thread(asked) < TURNS:  # every turn asked while none can finish
            assert time.monotonic() < deadline, f"only {await in_io_thread(asked)} of {TURNS} turns were asked"
            await asyncio.sleep(0.05)
        in_flight = threading.active_count()
        agents_worker.resume()
        responses = await asyncio.gather(*turns)
        return [r.text for r in responses], baseline, in_flight

    agents_worker.pause()  # SIGSTOP: no turn can finish, so all of them must be in flight at once
    try:
        texts, baseline, in_flight = asyncio.run(main())
    finally:
        agents_worker.resume()
    assert texts == [f"Reply to: Question {i} (turn 1)" for i in range(TURNS)]
    # The shared store pool and the listener, not a thread per turn.
    assert in_flight - baseline <= IO_THREADS + 1, (baseline, in_flight)


def test_the_async_client_waits_without_a_thread(agents_client: DurableClient) -> None:
    async def main() -> list[OrchestrationStatus]:
        client = AsyncDurableClient(agents_client.app, taskhub=agents_client.taskhub)
        started = [await client.schedule_new_orchestration("writer_orchestration") for _ in range(3)]
        states = await asyncio.gather(*(client.wait_for_orchestration_completion(i, timeout=60) for i in started))
        return [state.runtime_status for state in states]

    assert asyncio.run(main()) == [OrchestrationStatus.COMPLETED] * 3
