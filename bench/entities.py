"""The `entities` workload: the issue's counter (1,000 signals from 10 orchestrations at once) and 200
concurrent transfers between two accounts under `lock_entities`, each beside the same work as activities."""

from __future__ import annotations

import random
import time
import uuid

from durable_agents import DurableClient, OrchestrationStatus

Figures = dict[str, float]


def _completed(client: DurableClient, ids: list[str]) -> list[object]:
    states = [client.wait_for_orchestration_completion(i, timeout=600) for i in ids]
    assert all(s.runtime_status == OrchestrationStatus.COMPLETED for s in states)
    return [s.output for s in states]


def _applied(client: DurableClient, entity: str, operations: int) -> float:
    while True:
        found = client.get_entity(entity)
        if found is not None and found.operation_count >= operations:
            return time.time()
        time.sleep(0.02)


def entities(client: DurableClient, orchestrations: int = 10, signals: int = 100, transfers: int = 200) -> Figures:
    key = uuid.uuid4().hex[:8]
    counter = f"counter@{key}"
    started = time.time()
    _completed(client, [client.schedule_new_orchestration("signal_counter", input=[counter, signals])
                        for _ in range(orchestrations)])  # fmt: skip
    counted = _applied(client, counter, orchestrations * signals) - started
    found = client.get_entity(counter)
    assert found is not None
    exact = found.state == orchestrations * signals

    started = time.time()
    _completed(client, [client.schedule_new_orchestration("fan_out", input=signals) for _ in range(orchestrations)])
    as_activities = time.time() - started

    a, b = f"Account@a-{key}", f"Account@b-{key}"
    client.signal_entity(a, "deposit", 1000)
    client.signal_entity(b, "deposit", 1000)
    _applied(client, a, 1)
    _applied(client, b, 1)
    rng = random.Random(1)
    started = time.time()
    moves = [[a, b] if rng.random() < 0.5 else [b, a] for _ in range(transfers)]
    _completed(client, [client.schedule_new_orchestration("transfer", input=[*move, rng.randint(1, 300)])
                        for move in moves])  # fmt: skip
    transferring = time.time() - started
    balances = [client.get_entity(a).state, client.get_entity(b).state]  # type: ignore[union-attr]
    started = time.time()
    _completed(client, [client.schedule_new_orchestration("three_activities") for _ in range(transfers)])
    three = time.time() - started
    return {
        "counter_exact": float(exact),
        "signals_per_s": orchestrations * signals / counted,
        "signals_vs_activities": counted / as_activities,
        "total_kept": float(sum(balances) == 2000 and min(balances) >= 0),
        "transfers_per_s": transfers / transferring,
        "transfers_vs_3_activities": transferring / three,
    }
